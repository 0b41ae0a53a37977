// Validates an AsyncAPI document (a file path, or stdin) with @asyncapi/parser 3.x and exits
// non-zero when the parser reports an error (a diagnostic of severity 0).
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const text = readFileSync(process.argv[2] ?? 0, 'utf8');
const { document, diagnostics } = await new Parser().parse(text);
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  console.log(`${d.severity === 0 ? 'error' : 'note'}: ${d.code} ${d.message} at ${JSON.stringify(d.path)}`);
}
if (errors.length > 0 || document === undefined) {
  console.error(`invalid AsyncAPI document: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`valid AsyncAPI ${document.version()}: ${document.channels().length} channels, ${document.messages().length} messages`);
