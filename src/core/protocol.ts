/** Paths of the router ↔ orchestrator protocol that are not function requests. */

/** A router asks a region for one container of a function, ahead of its next request. */
export const PREWARM_PATH = '/_edge/prewarm';
