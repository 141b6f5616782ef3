export { MAX_DEPTH, TYPE_ID, deserializeAttribute, serializeAttribute } from './serialize.js'
export { normalizeNumber } from './numbers.js'
