// Preloaded with --import to install ./import-hooks.mjs.
import { register } from 'node:module'

register('./import-hooks.mjs', import.meta.url)
