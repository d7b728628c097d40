import { isUtf8 } from 'node:buffer';
import type { ColumnDecoder, ColumnMetaData, Compressors, DecodedArray, PageHeader, ParquetParsers, SchemaTree } from 'hyparquet/src/types.js' with { 'resolution-mode': 'import' };
import type * as ColumnModule from 'hyparquet/src/column.js' with { 'resolution-mode': 'import' };
import type * as ConvertModule from 'hyparquet/src/convert.js' with { 'resolution-mode': 'import' };
import type * as DatapageModule from 'hyparquet/src/datapage.js' with { 'resolution-mode': 'import' };
import type * as EncodingModule from 'hyparquet/src/encoding.js' with { 'resolution-mode': 'import' };
import type * as PlainModule from 'hyparquet/src/plain.js' with { 'resolution-mode': 'import' };

/**
 * Page-level decoding of flat columns (a top-level, non-repeated primitive: almost every
 * column of a Delta table) with hyparquet's page primitives.
 *
 * Why not hyparquet's column reader: it runs its general Dremel assembly (`assembleLists`)
 * on every value, and copies each page's values into a new array with the nulls put in.
 * For a flat column that work is pure overhead: the definition levels (0 or 1) already say
 * which rows are null. Here a page is kept as hyparquet decoded it, its values dense plus
 * its definition levels, and FlatRun.at maps a row to its value while the rows are walked
 * in order. In the reader benchmark this was a quarter of the decoding time.
 *
 * The module depends on hyparquet's internal modules (`hyparquet/src/*.js`, which the
 * package exports); package.json pins hyparquet's exact version for that reason.
 */

interface PageModules {
  parquetHeader: typeof ColumnModule.parquetHeader;
  convert: typeof ConvertModule.convert;
  convertWithDictionary: typeof ConvertModule.convertWithDictionary;
  decompressPage: typeof DatapageModule.decompressPage;
  readDataPage: typeof DatapageModule.readDataPage;
  readDataPageV2: typeof DatapageModule.readDataPageV2;
  readPlain: typeof PlainModule.readPlain;
  readRleBitPackedHybrid: typeof EncodingModule.readRleBitPackedHybrid;
}

let modulesPromise: Promise<PageModules> | undefined;

/** hyparquet is ESM-only; loaded once through import(). */
export function loadPageModules(): Promise<PageModules> {
  modulesPromise ??= (async () => {
    const [column, convert, datapage, encoding, plain] = await Promise.all([
      import('hyparquet/src/column.js'),
      import('hyparquet/src/convert.js'),
      import('hyparquet/src/datapage.js'),
      import('hyparquet/src/encoding.js'),
      import('hyparquet/src/plain.js'),
    ]);
    return {
      parquetHeader: column.parquetHeader,
      convert: convert.convert,
      convertWithDictionary: convert.convertWithDictionary,
      decompressPage: datapage.decompressPage,
      readDataPage: datapage.readDataPage,
      readDataPageV2: datapage.readDataPageV2,
      readPlain: plain.readPlain,
      readRleBitPackedHybrid: encoding.readRleBitPackedHybrid,
    };
  })();
  return modulesPromise;
}

/**
 * The decoded values of one data page of a flat column, covering rows [rowStart, rowEnd)
 * (absolute row numbers in the file). `values` holds the non-null values only, in order;
 * `defs[i]` is the definition level of row rowStart + i, and the row is null unless it
 * is 1. `defs` is undefined when the page has no null. With a `dictionary`, `values` are
 * indexes into it, dereferenced as rows are read rather than all up front.
 */
export class FlatRun {
  private nextRow = 0;
  private nextValue = 0;

  constructor(
    readonly rowStart: number,
    readonly rowEnd: number,
    private readonly values: ArrayLike<unknown>,
    private readonly defs: Uint8Array | undefined,
    private readonly dictionary?: ArrayLike<unknown>,
  ) {}

  /**
   * The value of absolute row `row` (null for a null). Rows must be asked in
   * non-decreasing order: the position of a row's value among the dense values is found
   * by walking the definition levels from the last row asked.
   */
  at(row: number): unknown {
    const i = row - this.rowStart;
    const defs = this.defs;
    let v = i;
    if (defs !== undefined) {
      let r = this.nextRow;
      v = this.nextValue;
      while (r < i) v += defs[r++];
      this.nextRow = r;
      this.nextValue = v;
      if (defs[i] === 0) return null;
    }
    const dictionary = this.dictionary;
    return dictionary === undefined ? this.values[v] : dictionary[this.values[v] as number];
  }
}

/**
 * hyparquet's description of flat column `node` (a child of `root`) for its page
 * primitives: values stay raw bytes unless annotated as text (utf8 false), and the given
 * parsers convert dates and timestamps.
 */
export function flatColumnDecoder(root: SchemaTree, node: SchemaTree, meta: ColumnMetaData, parsers: ParquetParsers, compressors: Compressors | undefined): ColumnDecoder {
  return {
    pathInSchema: meta.path_in_schema,
    type: meta.type,
    element: node.element,
    schemaPath: [root, node],
    codec: meta.codec,
    parsers,
    compressors,
    utf8: false,
  };
}

/** What decodePages needs beyond the bytes: the column and the rows wanted. */
export interface PageRange {
  /** Absolute row number of the first row of the first data page in the bytes. */
  firstRow: number;
  /** Rows wanted: pages entirely outside [from, to) are skipped without decompressing. */
  from: number;
  to: number;
}

/**
 * Decodes consecutive pages of one flat column chunk from `bytes` (which start at a page
 * header): a dictionary page becomes the returned dictionary, each data page overlapping
 * [from, to) becomes a FlatRun handed to `onRun`. Stops at the end of the bytes or at the
 * first page starting at or after `to`. Pass the dictionary of an earlier call (the
 * chunk's dictionary page read separately) to decode data pages that use it.
 */
export function decodePages(
  m: PageModules,
  bytes: Uint8Array,
  decoder: ColumnDecoder,
  range: PageRange,
  dictionary: DecodedArray | undefined,
  onRun: (run: FlatRun) => void,
): DecodedArray | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const reader = { view, offset: 0 };
  let row = range.firstRow;
  while (reader.offset < bytes.byteLength && row < range.to) {
    const header: PageHeader = m.parquetHeader(reader);
    const size = header.compressed_page_size;
    if (reader.offset + size > bytes.byteLength) {
      throw new Error(`page of ${size} bytes runs past the end of the column chunk`);
    }
    const body = bytes.subarray(reader.offset, reader.offset + size);
    reader.offset += size;
    if (header.type === 'DICTIONARY_PAGE') {
      const diph = header.dictionary_page_header;
      if (!diph) throw new Error('dictionary page without its header');
      const page = m.decompressPage(body, header.uncompressed_page_size, decoder.codec, decoder.compressors);
      const plain = m.readPlain({ view: new DataView(page.buffer, page.byteOffset, page.byteLength), offset: 0 }, decoder.type, diph.num_values, decoder.element.type_length);
      dictionary = m.convert(plain, decoder);
    } else if (header.type === 'DATA_PAGE' || header.type === 'DATA_PAGE_V2') {
      const rows = header.type === 'DATA_PAGE' ? header.data_page_header?.num_values : header.data_page_header_v2?.num_rows;
      if (rows === undefined) throw new Error(`${header.type} without its header`);
      // A flat column has one value (or null) per row, so num_values is the row count.
      if (row + rows > range.from) onRun(decodeDataPage(m, header, body, decoder, dictionary, row, rows));
      row += rows;
    }
    // Other page types (index pages) carry no values: skipped.
  }
  return dictionary;
}

/** Whether BYTE_ARRAY values of the column are UTF-8 text, which hyparquet would decode. */
function isText(decoder: ColumnDecoder): boolean {
  const e = decoder.element;
  return decoder.type === 'BYTE_ARRAY' && (e.converted_type === 'UTF8' || e.logical_type?.type === 'STRING');
}

/**
 * One data page (v1 or v2) of a flat column as a FlatRun. The common layouts are decoded
 * here: definition levels skipped when the page has no null, PLAIN values (text straight
 * from the page bytes to strings, with no byte-array view per value) and dictionary
 * indexes kept as indexes. Any other encoding goes through hyparquet's page reader, with
 * the same result.
 */
function decodeDataPage(
  m: PageModules,
  header: PageHeader,
  body: Uint8Array,
  decoder: ColumnDecoder,
  dictionary: DecodedArray | undefined,
  rowStart: number,
  rows: number,
): FlatRun {
  const optional = decoder.element.repetition_type !== 'REQUIRED';
  let page: Uint8Array;
  let offset = 0;
  let defs: Uint8Array | undefined;
  let nulls = 0;
  let encoding;
  if (header.type === 'DATA_PAGE_V2') {
    const h = header.data_page_header_v2;
    if (!h) throw new Error('data page v2 without its header');
    encoding = h.encoding;
    const levelBytes = h.repetition_levels_byte_length + h.definition_levels_byte_length;
    if (optional && h.num_nulls > 0) {
      defs = new Uint8Array(rows);
      const reader = { view: new DataView(body.buffer, body.byteOffset, body.byteLength), offset: h.repetition_levels_byte_length };
      m.readRleBitPackedHybrid(reader, 1, defs, h.definition_levels_byte_length);
      nulls = h.num_nulls;
    }
    const values = body.subarray(levelBytes);
    page = h.is_compressed === false ? values : m.decompressPage(values, header.uncompressed_page_size - levelBytes, decoder.codec, decoder.compressors);
  } else {
    const h = header.data_page_header;
    if (!h) throw new Error('data page without its header');
    encoding = h.encoding;
    page = m.decompressPage(body, header.uncompressed_page_size, decoder.codec, decoder.compressors);
    if (optional) {
      const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
      const length = view.getUint32(0, true);
      offset = 4 + length;
      if (!allOnes(page, 4, offset, rows)) {
        defs = new Uint8Array(rows);
        m.readRleBitPackedHybrid({ view, offset: 4 }, 1, defs, length);
        for (let i = 0; i < rows; i++) nulls += 1 - defs[i];
        if (nulls === 0) defs = undefined;
      }
    }
  }
  const count = rows - nulls;
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  if (encoding === 'PLAIN') {
    if (isText(decoder)) return new FlatRun(rowStart, rowStart + rows, readPlainText(page, view, offset, count), defs);
    const plain = m.readPlain({ view, offset }, decoder.type, count, decoder.element.type_length);
    return new FlatRun(rowStart, rowStart + rows, m.convert(plain, decoder), defs);
  }
  if ((encoding === 'RLE_DICTIONARY' || encoding === 'PLAIN_DICTIONARY') && dictionary) {
    const indexes = new Int32Array(count);
    const width = count > 0 ? view.getUint8(offset) : 0;
    if (width > 0) m.readRleBitPackedHybrid({ view, offset: offset + 1 }, width, indexes, page.byteLength - offset - 1);
    return new FlatRun(rowStart, rowStart + rows, indexes, defs, dictionary);
  }
  // Anything else: hyparquet's own page reader (it decodes the levels again, the same).
  const { dataPage } =
    header.type === 'DATA_PAGE_V2' ? m.readDataPageV2(body, header, decoder) : m.readDataPage(page, header.data_page_header as NonNullable<PageHeader['data_page_header']>, decoder);
  return new FlatRun(rowStart, rowStart + rows, m.convertWithDictionary(dataPage, dictionary, encoding, decoder), defs);
}

/**
 * True when the RLE/bit-packed definition levels in bytes [start, end) open with one RLE
 * run of value 1 covering all `rows` (how writers encode a page without a null), so they
 * need not be decoded.
 */
function allOnes(page: Uint8Array, start: number, end: number, rows: number): boolean {
  let header = 0;
  let shift = 0;
  let i = start;
  for (; i < end && shift < 35; i++) {
    const b = page[i];
    header |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
  }
  i++;
  if (i >= end || (header & 1) !== 0) return false;
  return header >>> 1 >= rows && page[i] === 1;
}

/**
 * `count` PLAIN BYTE_ARRAY values from `offset`, decoded as UTF-8 strings. A value that is
 * not valid UTF-8 is kept as a copy of its bytes, for the column's converter to refuse or
 * replace (invalidUtf8 policy). The check costs one isUtf8 over the page: values are
 * separated by their 4-byte lengths, and when no byte of those is >= 0x80 (every value
 * shorter than 128 bytes, and so on per byte) they are ASCII, which never completes or
 * continues a multi-byte sequence, so the page is valid UTF-8 exactly when every value is.
 * Otherwise each value is checked: Buffer's decoder puts U+FFFD for every bad sequence, and
 * a value with one is checked again with isUtf8 (U+FFFD may also be genuine text).
 */
function readPlainText(page: Uint8Array, view: DataView, offset: number, count: number): Array<string | Uint8Array> {
  const buf = Buffer.from(page.buffer, page.byteOffset, page.byteLength);
  const out = new Array<string | Uint8Array>(count);
  let at = offset;
  let asciiLengths = true;
  for (let i = 0; i < count; i++) {
    const length = view.getUint32(at, true);
    at += 4;
    if (at + length > page.byteLength) throw new Error(`text value ${i} runs past the end of its page`);
    if ((length & 0x80808080) !== 0) asciiLengths = false;
    out[i] = buf.toString('utf8', at, at + length);
    at += length;
  }
  if (count > 0 && !(asciiLengths && isUtf8(page.subarray(offset, at)))) {
    at = offset;
    for (let i = 0; i < count; i++) {
      const length = view.getUint32(at, true);
      at += 4;
      if ((out[i] as string).indexOf('\uFFFD') !== -1 && !isUtf8(page.subarray(at, at + length))) out[i] = page.slice(at, at + length);
      at += length;
    }
  }
  return out;
}
