// Who the portal talks as: the API token kept in this browser and the scope the server grants.
import { ref } from "vue";
import { api } from "./api/client";

export const scope = ref<string>("read");
export const who = ref<string>("anonymous");

export async function refreshSession(): Promise<void> {
  const { data } = await api.GET("/api/whoami");
  scope.value = data?.scope ?? "none";
  who.value = data?.name ?? "not signed in";
}

export function setToken(token: string): Promise<void> {
  if (token) localStorage.setItem("jaas-token", token);
  else localStorage.removeItem("jaas-token");
  return refreshSession();
}

export const canOperate = () => scope.value === "operate" || scope.value === "admin";
