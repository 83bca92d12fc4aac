// Omni's SDK and dashboard idiom against types generated from docs/openapi.json:
// an openapi-fetch client on the /api/v2 base, server-relative paths, Omni's schema names.
// tsc --strict fails when a schema is renamed, a path goes back under /api/v2, or a field
// loses its type.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/omni.js";

type Schemas = components["schemas"];

export function omniClient(baseUrl: string, apiKey: string) {
  return createClient<paths>({ baseUrl: `${baseUrl}/api/v2`, headers: { "x-api-key": apiKey } });
}

export interface DashboardView {
  eventsPerHour: number;
  eventsLast24h: number;
  failureRate: number;
  warn: boolean;
  sparkline: number[];
  database: { status: "ok" | "error"; latency: number | null };
  nats: { status: "ok" | "error" | "disabled"; latency: number | null | undefined };
  version: string;
  uptime: number;
}

export async function loadDashboard(baseUrl: string, apiKey: string): Promise<DashboardView> {
  const client = omniClient(baseUrl, apiKey);
  const metrics = await client.GET("/event-ops/metrics");
  const analytics = await client.GET("/events/analytics", {
    params: { query: { since: new Date(Date.now() - 86_400_000).toISOString() } },
  });
  const health = await client.GET("/health");
  if (!metrics.data || !analytics.data || !health.data) throw new Error("Omni did not answer");
  const m: Schemas["EventMetrics"] = metrics.data.data;
  const a: Schemas["EventAnalytics"] = analytics.data;
  const h: Schemas["HealthResponse"] = health.data;
  return {
    eventsPerHour: m.eventsPerHour,
    eventsLast24h: m.eventsLast24h,
    failureRate: m.failureRate,
    warn: m.failureRate > 5,
    sparkline: (a.timeline ?? []).map((point) => point.count),
    database: { status: h.checks.database.status, latency: h.checks.database.latency },
    nats: { status: h.checks.nats.status, latency: h.checks.nats.latency },
    version: h.version,
    uptime: h.uptime,
  };
}

export async function deadLetters(baseUrl: string, apiKey: string): Promise<number> {
  const { data } = await omniClient(baseUrl, apiKey).GET("/dead-letters/stats");
  const stats: Schemas["DeadLetterStats"] | undefined = data?.data;
  return (stats?.pending ?? 0) + (stats?.retrying ?? 0);
}

export async function failedActions(baseUrl: string, apiKey: string): Promise<string[]> {
  const client = omniClient(baseUrl, apiKey);
  const { data } = await client.GET("/automation-logs", { params: { query: { status: "failed" } } });
  const logs: Schemas["AutomationLog"][] = data?.items ?? [];
  const failed: string[] = [];
  for (const log of logs) {
    const status: "success" | "failed" | "skipped" = log.status;
    for (const action of log.actionsExecuted ?? []) {
      const outcome: "success" | "failed" = action.status;
      const took: number = action.durationMs;
      if (outcome === "failed") failed.push(`${status} ${action.action} (${took} ms)`);
    }
  }
  return failed;
}

export async function automationEngine(baseUrl: string, apiKey: string): Promise<boolean> {
  const { data } = await omniClient(baseUrl, apiKey).GET("/automation-metrics");
  const metrics: Schemas["AutomationMetrics"] | undefined = data;
  return metrics?.running ?? false;
}

export async function summary(baseUrl: string, apiKey: string): Promise<string> {
  const { data } = await omniClient(baseUrl, apiKey).GET("/dashboard");
  const system: "healthy" | "degraded" | undefined = data?.system.status;
  return system ?? "unknown";
}

// Drill-down and comparison: one channel's week against the week before, failures per bucket.
export interface ChannelWeek {
  total: number;
  before: number;
  failedShare: number[];
  beforeFailed: number[];
}

export async function channelWeek(baseUrl: string, apiKey: string, channel: string): Promise<ChannelWeek> {
  const { data } = await omniClient(baseUrl, apiKey).GET("/events/analytics", {
    params: {
      query: { since: new Date(Date.now() - 7 * 86_400_000).toISOString(), channel, compare: "previous_period" },
    },
  });
  const a: Schemas["EventAnalytics"] | undefined = data;
  const before: Schemas["Comparison"] | undefined = a?.comparison;
  const share = (points: Schemas["TimelineBucket"][]) =>
    points.map((point) => (point.count ? point.failed / point.count : 0));
  return {
    total: a?.totalMessages ?? 0,
    before: before?.totalMessages ?? 0,
    failedShare: share(a?.timeline ?? []),
    beforeFailed: share(before?.timeline ?? []),
  };
}

// One instance's last 24 h against the same day a week earlier.
export async function instanceFailures(baseUrl: string, apiKey: string, instanceId: string): Promise<number> {
  const { data } = await omniClient(baseUrl, apiKey).GET("/dashboard", {
    params: { query: { instanceId, compare: "previous_week" } },
  });
  const now: number | undefined = data?.events.failed24h;
  const previous: Schemas["DashboardPrevious"] | undefined = data?.events.previous;
  return (now ?? 0) - (previous?.failed24h ?? 0);
}
