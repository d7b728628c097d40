// Webview entry point. Filled in by the extension UI issue; kept buildable from day one.
const root = document.getElementById('root');
if (root) root.textContent = 'Delta Neon Sync';
