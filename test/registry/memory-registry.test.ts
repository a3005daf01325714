import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { registryContract } from './registry-contract.js';

registryContract('MemoryRegistry', async () => {
  const registry = new MemoryRegistry();
  return { registry, peer: () => registry, cleanup: () => registry.close() };
});
