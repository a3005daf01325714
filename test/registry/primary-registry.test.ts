import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { PrimaryRegistryClient, serveRegistry } from '../../src/registry/primary-registry.js';
import { linkedPair } from '../support/linked-pair.js';
import { registryContract } from './registry-contract.js';

// Two workers' clients of the one MemoryRegistry the cluster primary holds.
registryContract('PrimaryRegistryClient (a MemoryRegistry in the cluster primary)', async () => {
  const held = new MemoryRegistry();
  const first = linkedPair();
  const second = linkedPair();
  const stops = [await serveRegistry(held, first.primary), await serveRegistry(held, second.primary)];
  return {
    registry: new PrimaryRegistryClient(first.worker),
    peer: () => new PrimaryRegistryClient(second.worker),
    async cleanup() {
      for (const stop of stops) await stop();
      first.close();
      second.close();
      await held.close();
    },
  };
});
