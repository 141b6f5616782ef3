/**
 * The standalone browser builds, for pages without a bundler: dist/browser/kms-envelope.iife.js (a `<script>`,
 * global `KmsEnvelope`) and dist/browser/module/kms-envelope.js (a `<script type="module">` or `import`), and
 * for service workers dist/browser/kms-envelope.mjs (kms-envelope/browser/bundled: one ES module, no chunks). All
 * are the browser entry with its dependencies bundled in, minified, and its classes' names given back:
 * minifying renames classes, and an error's `name` is its class's, so errors would read `h: ...` instead of
 * `ConfigurationError: ...`. Names cost nothing here: these builds hold every class anyway.
 */
import * as api from './browser.js'
import { setUpErrorClasses } from './error-copies.js'

for (const [name, value] of Object.entries(api)) {
  if (typeof value === 'function' && /^[A-Z]/.test(name)) Object.defineProperty(value, 'name', { value: name })
}
// And `instanceof` on an error class recognises another copy's errors, as in the Node entries: in Jest's jsdom
// environment, `require('kms-envelope')` gets the CommonJS one of these builds, while a dependency, or a setup that
// resolves with the node condition, may load the Node build, and their errors meet.
setUpErrorClasses(api)

export * from './browser.js'
