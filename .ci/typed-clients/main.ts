// Compiled (never run) by .ci/typed-clients/check against a client that
// openapi-typescript generates from docs/openapi.json: what a connector
// developer writes first must type-check.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

const hub = createClient<paths>({
  baseUrl: "https://hookhub.example.com",
  headers: { Authorization: "Bearer hh_live_example" },
});

export async function postAnEventAndListSubscriptions(): Promise<string[]> {
  // `data` takes any JSON object (a free-form object must not become Record<string, never>).
  const posted = await hub.POST("/v1/events", {
    body: { type: "appointment.booked", data: { appointment_id: "apt_1", client_id: "cl_1", seats: 2 } },
  });
  const eventId: string | undefined = posted.data?.id;

  // A create needs `url` and `event_types`.
  // @ts-expect-error `url` is missing
  await hub.POST("/v1/subscriptions", { body: { event_types: ["appointment.booked"] } });
  await hub.POST("/v1/subscriptions", {
    body: { url: "https://crm.example.com/hooks", event_types: ["appointment.booked"] },
  });

  const listed = await hub.GET("/v1/subscriptions", { params: { query: { limit: 10 } } });
  // List items are the one subscription type, not a copy of it.
  const subscriptions: components["schemas"]["SubscriptionBody"][] = listed.data?.data ?? [];

  // A sample has the fields a live delivery has.
  const samples = await hub.GET("/v1/hooks/samples", { params: { query: { event: "*" } } });
  const sample: components["schemas"]["WebhookBody"] | undefined = samples.data?.[0];
  const sampleData: Record<string, unknown> | undefined = sample?.data;

  const me = await hub.GET("/v1/me");
  const tenant: string | undefined = me.data?.tenant_name;
  return [eventId ?? "", tenant ?? "", String(sampleData), ...subscriptions.map((s) => s.url)];
}
