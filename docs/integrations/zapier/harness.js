// Runs one operation of the app with zapier-platform-core's app tester,
// as `zapier test` would, and prints its result as JSON. Used by
// tests/it/integrations.rs; the hub and key come from the environment.
//
//   HOOKHUB_URL=... HOOKHUB_API_KEY=... node harness.js test
//   ... node harness.js subscribe EVENT TARGET_URL
//   ... node harness.js list EVENT
//   ... node harness.js perform < delivery-body.json
//   ... node harness.js unsubscribe HOOK_ID
const zapier = require('zapier-platform-core');
const App = require('./index');

const appTester = zapier.createAppTester(App);
const trigger = App.triggers.new_event.operation;

async function main([command, ...args]) {
  const authData = { hubUrl: process.env.HOOKHUB_URL, apiKey: process.env.HOOKHUB_API_KEY };
  switch (command) {
    case 'test':
      return appTester(App.authentication.test, { authData });
    case 'subscribe':
      return appTester(trigger.performSubscribe, { authData, inputData: { event: args[0] }, targetUrl: args[1] });
    case 'list':
      return appTester(trigger.performList, { authData, inputData: { event: args[0] } });
    case 'perform': {
      const body = JSON.parse(require('fs').readFileSync(0, 'utf8'));
      return appTester(trigger.perform, { authData, inputData: {}, cleanedRequest: body });
    }
    case 'unsubscribe':
      return appTester(trigger.performUnsubscribe, { authData, subscribeData: { id: args[0] } });
    default:
      throw new Error(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.error(error.stack || String(error));
    process.exit(1);
  },
);
