// A minimal Zapier app for Hookhub (Zapier Platform CLI): API-key
// authentication with a connection test, and one REST hook trigger,
// "New Event". `zapier push` it as is, or start yours from it.
// docs/integrations.md explains each part; tests/it/integrations.rs runs it
// with zapier-platform-core's app tester against a real hub.
const { version: platformVersion } = require('zapier-platform-core');
const { version } = require('./package.json');

/** The hub's base URL, from the connection, without a trailing slash. */
const hub = (bundle) => String(bundle.authData.hubUrl).replace(/\/+$/, '');

const authentication = {
  type: 'custom',
  fields: [
    {
      key: 'hubUrl',
      label: 'Hookhub URL',
      required: true,
      type: 'string',
      default: 'https://hookhub.example.com',
    },
    {
      key: 'apiKey',
      label: 'API key',
      required: true,
      type: 'password',
      helpText: 'An `hh_live_...` key with the `write` scope (it creates and removes hooks).',
    },
  ],
  // The connection test: one cheap authenticated call. Its answer names
  // the connection in Zapier's account list.
  test: async (z, bundle) => (await z.request({ url: `${hub(bundle)}/v1/me` })).data,
  connectionLabel: '{{bundle.inputData.tenant_name}}',
};

/** Every request carries the API key. */
const addApiKey = (request, z, bundle) => {
  if (bundle.authData.apiKey) {
    request.headers = { ...request.headers, Authorization: `Bearer ${bundle.authData.apiKey}` };
  }
  return request;
};

const newEvent = {
  key: 'new_event',
  noun: 'Event',
  display: {
    label: 'New Event',
    description: 'Triggers when Hookhub accepts an event of the chosen type.',
  },
  operation: {
    type: 'hook',
    inputFields: [
      {
        key: 'event',
        label: 'Event type',
        required: true,
        default: '*',
        helpText: 'Like `appointment.booked`, or `*` for every type.',
      },
    ],
    // Zapier stores what this returns and hands it to performUnsubscribe.
    performSubscribe: async (z, bundle) => {
      const response = await z.request({
        url: `${hub(bundle)}/v1/hooks`,
        method: 'POST',
        body: { target_url: bundle.targetUrl, event: bundle.inputData.event },
      });
      return response.data;
    },
    // Hookhub answers 204 even when the hook is already gone.
    performUnsubscribe: async (z, bundle) => {
      await z.request({
        url: `${hub(bundle)}/v1/hooks/${encodeURIComponent(bundle.subscribeData.id)}`,
        method: 'DELETE',
      });
      return {};
    },
    // A delivery's body is the event: {id, type, timestamp, data}.
    perform: async (z, bundle) => [bundle.cleanedRequest],
    // Samples have exactly the fields a delivery has.
    performList: async (z, bundle) => {
      const response = await z.request({
        url: `${hub(bundle)}/v1/hooks/samples`,
        params: { event: bundle.inputData.event },
      });
      return response.data;
    },
    sample: {
      id: 'evt_sample_appointment_booked',
      type: 'appointment.booked',
      timestamp: '2026-12-01T08:00:00.000Z',
      data: { appointment_id: 'apt_5521', client_id: 'cl_8f3a2', starts_at: '2026-12-01T09:00:00Z' },
    },
  },
};

module.exports = {
  version,
  platformVersion,
  authentication,
  beforeRequest: [addApiKey],
  triggers: { [newEvent.key]: newEvent },
};
