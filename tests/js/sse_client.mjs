// Reads the live feed with the npm `eventsource` package; prints one JSON line per event.
// usage: node sse_client.mjs URL API_KEY
import { EventSource } from "eventsource";

const [url, key] = process.argv.slice(2);
const names = ["connected", "event.received", "instance.status", "status", "reset", "overflow"];
const source = new EventSource(url, {
  fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, "x-api-key": key } }),
});
for (const name of names) {
  source.addEventListener(name, (event) => {
    const line = { event: name, id: event.lastEventId, data: JSON.parse(event.data) };
    process.stdout.write(JSON.stringify(line) + "\n");
  });
}
source.onerror = (error) => process.stderr.write(`error: ${error.message ?? error}\n`);
