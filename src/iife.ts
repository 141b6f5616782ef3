/**
 * The `<script>` build (dist/browser/kms-envelope.iife.js, global `KmsEnvelope`): the browser entry, with its
 * classes' names given back. Minifying renames classes, and an error's `name` is its class's, so errors read
 * `h: ...` instead of `ConfigurationError: ...`. Names cost nothing here: the script holds every class anyway.
 */
import * as api from './browser.js'

for (const [name, value] of Object.entries(api)) {
  if (typeof value === 'function' && /^[A-Z]/.test(name)) Object.defineProperty(value, 'name', { value: name })
}

export * from './browser.js'
