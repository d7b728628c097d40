import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import {
  parseWebviewToHost,
  type HostToWebview,
  type PanelKind,
  type PanelState,
  type ResponseResult,
  type WebviewRequest,
} from '../protocol/messages';
import { logText, toProtocolError } from './toProtocolError';

/**
 * Base of the Preview and Progress panels. It owns the protocol's host side:
 * - HTML with a nonce CSP; scripts and styles only from `dist/` and `media/`;
 * - nothing is posted before the webview says `ready` (posts queue; a reloaded webview
 *   says `ready` again and gets a fresh `init`);
 * - every inbound message is validated; requests get exactly one response.
 */
export abstract class WebviewPanelBase implements vscode.Disposable {
  private ready = false;
  private queue: HostToWebview[] = [];
  private readonly subs: vscode.Disposable[] = [];
  private disposed = false;

  protected constructor(
    protected readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    protected readonly log: vscode.LogOutputChannel,
    private readonly kind: PanelKind,
  ) {
    panel.webview.options = {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
    };
    panel.webview.html = webviewHtml(panel.webview, extensionUri, kind, panel.title);
    this.subs.push(
      panel.webview.onDidReceiveMessage((raw: unknown) => void this.receive(raw)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  /** The message sent after each `ready`: the whole state the webview renders. */
  protected abstract initMessage(): HostToWebview;
  /** Handles one request; a thrown error becomes `{ok: false, error}`. */
  protected abstract handle(request: WebviewRequest): Promise<ResponseResult>;
  /** What the serializer gets back after a reload. */
  abstract state(): PanelState;

  protected post(message: HostToWebview): void {
    void this.send(message);
  }

  /** Posts `message` (queued until `ready`); resolves once the webview has it, or at once when queued or disposed. */
  private async send(message: HostToWebview): Promise<void> {
    if (this.disposed) return;
    if (!this.ready) {
      this.queue.push(message);
      return;
    }
    await Promise.resolve(this.panel.webview.postMessage(message)).catch(() => false);
  }

  /** Called once the response to `request` reached the webview (`ok`: a result, not an error). */
  protected onResponded(_request: WebviewRequest, _ok: boolean): void {
    // Subclasses follow what the webview has shown.
  }

  private async receive(raw: unknown): Promise<void> {
    const msg = parseWebviewToHost(raw);
    if (!msg) {
      this.log.warn(`${this.kind} panel: dropped an off-protocol message`);
      return;
    }
    if (msg.type === 'ready') {
      this.ready = true;
      const queued = this.queue;
      this.queue = [];
      void this.panel.webview.postMessage(this.initMessage());
      // The init already holds the latest state; only responses still matter.
      for (const m of queued) if (m.type === 'response') void this.panel.webview.postMessage(m);
      return;
    }
    let ok = true;
    try {
      const result = await this.handle(msg);
      await this.send({ type: 'response', id: msg.id, ok: true, result });
    } catch (e) {
      ok = false;
      this.log.error(`${this.kind} panel: ${msg.type} failed: ${logText(e)}`);
      await this.send({ type: 'response', id: msg.id, ok: false, error: toProtocolError(e) });
    }
    this.onResponded(msg, ok);
  }

  reveal(): void {
    this.panel.reveal(undefined, false);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.onDispose();
    for (const s of this.subs) s.dispose();
    this.panel.dispose();
  }

  protected onDispose(): void {
    // Subclasses release what they hold.
  }
}

/** The panel page: one bundle for both panels, `data-panel` picks the view. */
export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, kind: PanelKind, title: string): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js'));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'webview.css'));
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `img-src ${webview.cspSource} data:`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style.toString()}">
<title>${escapeHtml(title)}</title>
</head>
<body data-panel="${kind}">
<main id="root" aria-live="polite"></main>
<script nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
