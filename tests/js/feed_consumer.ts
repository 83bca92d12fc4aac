// A live-feed consumer written against types generated from docs/openapi.json
// (openapi-typescript), the way a dashboard reads the SSE stream and the WebSocket twin.
// tsc --strict fails when a schema is renamed or a field loses its type.
import type { components } from "./generated/omni.js";

type Schemas = components["schemas"];
type StreamEvent = Schemas["StreamEvent"];
type StreamFrame = Schemas["StreamFrame"];

export interface Row {
  id: string;
  type: string;
  instance: string | null;
  direction: "inbound" | "outbound" | "-";
  at: Date;
}

export function row(data: Schemas["EventReceivedData"]): Row {
  return {
    id: data.id,
    type: data.eventType,
    instance: data.instanceId,
    direction: data.direction ?? "-",
    at: new Date(data.receivedAt),
  };
}

export function natsLabel(status: Schemas["StreamStatus"]): string {
  const mode: "buffer" | "jetstream" = status.mode;
  return status.natsConnected === null ? `${mode}, no NATS` : `${mode}, NATS ${status.natsConnected ? "up" : "down"}`;
}

// One SSE event as an EventSource hands it over: the event's name, id and data text.
export function onSse(event: StreamEvent, rows: Row[]): string | null {
  switch (event.event) {
    case "connected": {
      const retry: number | undefined = event.retry;
      return `${natsLabel(JSON.parse(event.data) as Schemas["StreamStatus"])} (retry ${retry ?? 0} ms)`;
    }
    case "event.received":
      rows.unshift(row(JSON.parse(event.data) as Schemas["EventReceivedData"]));
      return null;
    case "instance.status": {
      const data = JSON.parse(event.data) as Schemas["InstanceStatusData"];
      const connected: boolean = data.isConnected;
      return `${data.instanceId ?? "?"} ${connected ? "connected" : "disconnected"}`;
    }
    case "status":
      return natsLabel(JSON.parse(event.data) as Schemas["StreamStatus"]);
    case "reset": {
      const data = JSON.parse(event.data) as Schemas["ResetData"];
      const refetch: string = data.refetch;
      return `refetch ${refetch}: ${data.reason}`;
    }
    case "overflow": {
      const data = JSON.parse(event.data) as Schemas["OverflowData"];
      const resume: "Last-Event-ID" = data.resumeWith;
      return `too slow; resume with ${resume}`;
    }
  }
}

// One WebSocket frame: the same events, data already an object.
export function onFrame(frame: StreamFrame): string {
  const lastEventId: string = frame.id;
  return `${frame.event} ${lastEventId}`;
}
