// Server-sent events read from a fetch() body, so that the request can carry an Authorization
// header (EventSource cannot). The format is the HTML standard's: lines `field: value`, an
// event ends at a blank line; `data` lines join with "\n"; a line starting with ":" is a comment.

/// Calls `onEvent({id, event, data})` for each event of `body` (a ReadableStream of bytes) and
/// resolves when the stream ends. `id` is the last `id:` seen so far (for Last-Event-ID).
export async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new EventParser(onEvent);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.push(value);
  }
  parser.end();
}

/// The line parser on its own: `push` text as it arrives, `end` when the stream closes.
export class EventParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.lastId = null;
    this.reset();
  }

  reset() {
    this.event = '';
    this.data = [];
  }

  push(text) {
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone "\r" at the end may be the first half of "\r\n": wait for more.
      if (!match || (match[0] === '\r' && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  end() {
    // An event not ended by a blank line when the stream closes is dropped, as the standard says.
    this.buffer = '';
    this.reset();
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0) {
        this.onEvent({ id: this.lastId, event: this.event || 'message', data: this.data.join('\n') });
      }
      this.reset();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
  }
}
