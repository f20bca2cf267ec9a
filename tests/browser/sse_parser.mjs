// The console's server-sent events parser (crates/server/assets/sse.js) on the cases the
// standard names: CRLF, CR and LF line ends split anywhere, comments, multi-line data, an id that
// outlives its event, an event cut off by the end of the stream. Run by tests/api/browser.rs.
import assert from 'node:assert/strict';
import { EventParser, readEvents } from '../../crates/server/assets/sse.js';

const stream = 'id: 1\r\nevent: status\r\ndata: {"status":"running"}\r\n\r\n'
  + ': a comment\nid: 2\nevent: progress\ndata: a\ndata: b\n\n'
  + 'event: stage\rdata:c\r\r'
  + 'id: 4\ndata: cut off';
const expected = [
  { id: '1', event: 'status', data: '{"status":"running"}' },
  { id: '2', event: 'progress', data: 'a\nb' },
  { id: '2', event: 'stage', data: 'c' },
];

// Whole, and split at every place (a CRLF cut in two included).
for (let cut = 0; cut <= stream.length; cut += 1) {
  const seen = [];
  const parser = new EventParser((e) => seen.push(e));
  parser.push(stream.slice(0, cut));
  parser.push(stream.slice(cut));
  parser.end();
  assert.deepEqual(seen, expected, `split at ${cut}`);
}

// From a byte stream, a multi-byte character cut between chunks.
const bytes = new TextEncoder().encode('id: 9\ndata: café\n\n');
const body = new ReadableStream({
  start(controller) {
    controller.enqueue(bytes.slice(0, 16));
    controller.enqueue(bytes.slice(16));
    controller.close();
  },
});
const read = [];
await readEvents(body, (e) => read.push(e));
assert.deepEqual(read, [{ id: '9', event: 'message', data: 'café' }]);
console.log('sse parser: ok');
