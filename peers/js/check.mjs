// Evaluates the cases of a JSON file through the OpenFeature server SDK with
// the official OFREP provider, and prints the answers as JSON:
//
//   node check.mjs BASE_URL CASES.json   (token, if any, in FLAGWIRE_TOKEN)
//
// The peers harness writes the cases (with their expectations) and compares
// the answers; this script only evaluates.
import { readFileSync } from 'node:fs';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const [baseUrl, casesPath] = process.argv.slice(2);
if (!baseUrl || !casesPath) {
  console.error('usage: node check.mjs BASE_URL CASES.json');
  process.exit(2);
}
const cases = JSON.parse(readFileSync(casesPath, 'utf8'));
const headers = [['X-Flagwire-Environment', 'prod']];
if (process.env.FLAGWIRE_TOKEN) headers.push(['Authorization', `Bearer ${process.env.FLAGWIRE_TOKEN}`]);

await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl, headers }));
const client = OpenFeature.getClient();

const answers = [];
for (const c of cases) {
  let d;
  switch (c.call) {
    case 'bool':
      d = await client.getBooleanDetails(c.flag, c.default, c.context);
      break;
    case 'string':
      d = await client.getStringDetails(c.flag, c.default, c.context);
      break;
    case 'int':
    case 'float':
      d = await client.getNumberDetails(c.flag, c.default, c.context);
      break;
    case 'object':
      d = await client.getObjectDetails(c.flag, c.default, c.context);
      break;
    default:
      console.error(`unknown call ${c.call}`);
      process.exit(2);
  }
  answers.push({ value: d.value, variant: d.variant ?? '', reason: d.reason ?? '', errorCode: d.errorCode ?? '' });
}
await OpenFeature.close();

// The packages' own package.json (their "exports" do not list it).
const version = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
const versions = {
  node: process.version,
  '@openfeature/server-sdk': version('@openfeature/server-sdk'),
  '@openfeature/ofrep-provider': version('@openfeature/ofrep-provider'),
};
process.stdout.write(JSON.stringify({ versions, answers }));
