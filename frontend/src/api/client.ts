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
