// The API client: types generated from the OpenAPI document (`npm run gen`), never by hand.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Summary = components["schemas"]["Summary"];
export type JobPage = components["schemas"]["JobPage"];
export type FileHistory = components["schemas"]["FileHistory"];
export type Alert = components["schemas"]["AlertOut"];
export type Frame = components["schemas"]["Frame"];

export const api = createClient<paths>({ baseUrl: "" });

api.use({
  onRequest({ request }) {
    const token = localStorage.getItem("jaas-token");
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
});

export type DashboardHistory = components["schemas"]["DashboardHistory"];
export type RunOut = components["schemas"]["RunOut"];
export type AlertInstance = components["schemas"]["AlertInstance"];
export type RuleOut = components["schemas"]["RuleOut"];
export type AlertAction = components["schemas"]["AlertActionOut"];
export type ActionPreview = components["schemas"]["ActionPreview"];
export type ActionResult = components["schemas"]["ActionResult"];
export type Transfers = components["schemas"]["TransfersOut"];
export type Replica = components["schemas"]["ReplicaOut"];
export type Quality = components["schemas"]["QualityOut"];
export type Live = components["schemas"]["LiveOut"];

/** The one-line reason of a refused request (the API's ``detail``). */
export function reason(err: unknown): string {
  return String((err as { detail?: string } | undefined)?.detail ?? "refused");
}

/** Burrow status as icon + text (colour is never the only cue). */
export const lagIcon: Record<string, string> = {
  OK: "✔",
  WARN: "⚠",
  ERR: "✖",
  STALL: "⏸",
  STOP: "⏹",
  REWIND: "⏪",
};
export type JobsQuery = NonNullable<paths["/api/jobs"]["get"]["parameters"]["query"]>;
export type LagHistory = components["schemas"]["LagHistory"];
