/**
 * Simulated client metros: which loopback subnet stands for which city.
 * `geo/sim.mmdb` is generated from this table, and the simulation's load generator binds
 * its sockets to addresses in these subnets, so the router's real GeoIP path sees clients
 * from all over the world while every packet stays on 127.0.0.0/8.
 */
export interface ClientMetro {
  /** Short stable id used in reports and scenario scripts. */
  readonly id: string;
  readonly city: string;
  /** ISO 3166-1 alpha-2. */
  readonly country: string;
  /** Continent code as MaxMind spells it (AF, AN, AS, EU, NA, OC, SA). */
  readonly continent: string;
  readonly lat: number;
  readonly lon: number;
  /** Loopback subnet whose addresses are this metro's clients. */
  readonly subnet: string;
}

export const CLIENT_METROS: readonly ClientMetro[] = [
  { id: 'atlanta', city: 'Atlanta', country: 'US', continent: 'NA', lat: 33.749, lon: -84.388, subnet: '127.1.0.0/16' },
  { id: 'chicago', city: 'Chicago', country: 'US', continent: 'NA', lat: 41.8781, lon: -87.6298, subnet: '127.2.0.0/16' },
  { id: 'toronto', city: 'Toronto', country: 'CA', continent: 'NA', lat: 43.6532, lon: -79.3832, subnet: '127.3.0.0/16' },
  { id: 'seattle', city: 'Seattle', country: 'US', continent: 'NA', lat: 47.6062, lon: -122.3321, subnet: '127.4.0.0/16' },
  { id: 'mexico-city', city: 'Mexico City', country: 'MX', continent: 'NA', lat: 19.4326, lon: -99.1332, subnet: '127.5.0.0/16' },
  { id: 'sao-paulo', city: 'São Paulo', country: 'BR', continent: 'SA', lat: -23.5505, lon: -46.6333, subnet: '127.6.0.0/16' },
  { id: 'buenos-aires', city: 'Buenos Aires', country: 'AR', continent: 'SA', lat: -34.6037, lon: -58.3816, subnet: '127.7.0.0/16' },
  { id: 'london', city: 'London', country: 'GB', continent: 'EU', lat: 51.5074, lon: -0.1278, subnet: '127.8.0.0/16' },
  { id: 'paris', city: 'Paris', country: 'FR', continent: 'EU', lat: 48.8566, lon: 2.3522, subnet: '127.9.0.0/16' },
  { id: 'stockholm', city: 'Stockholm', country: 'SE', continent: 'EU', lat: 59.3293, lon: 18.0686, subnet: '127.10.0.0/16' },
  { id: 'lagos', city: 'Lagos', country: 'NG', continent: 'AF', lat: 6.5244, lon: 3.3792, subnet: '127.11.0.0/16' },
  { id: 'johannesburg', city: 'Johannesburg', country: 'ZA', continent: 'AF', lat: -26.2041, lon: 28.0473, subnet: '127.12.0.0/16' },
  { id: 'mumbai', city: 'Mumbai', country: 'IN', continent: 'AS', lat: 19.076, lon: 72.8777, subnet: '127.13.0.0/16' },
  { id: 'singapore', city: 'Singapore', country: 'SG', continent: 'AS', lat: 1.3521, lon: 103.8198, subnet: '127.14.0.0/16' },
  { id: 'tokyo', city: 'Tokyo', country: 'JP', continent: 'AS', lat: 35.6762, lon: 139.6503, subnet: '127.15.0.0/16' },
  { id: 'sydney', city: 'Sydney', country: 'AU', continent: 'OC', lat: -33.8688, lon: 151.2093, subnet: '127.16.0.0/16' },
  { id: 'auckland', city: 'Auckland', country: 'NZ', continent: 'OC', lat: -36.8485, lon: 174.7633, subnet: '127.17.0.0/16' },
];

/**
 * The same metros on the docker-compose network (docker-compose.yml, subnet 172.30.0.0/16): the
 * metro whose loopback subnet is 127.N.0.0/16 owns 172.30.N.0/24, and the compose load
 * generators take fixed addresses there. `geo/sim.mmdb` must map these too, so the routers in
 * containers locate those clients through the same GeoIP path. 172.30.0.0/24 is Docker's dynamic
 * range (routers, orchestrators, Redis, the gateway host traffic arrives from) and no metro.
 */
export const COMPOSE_CLIENT_METROS: readonly ClientMetro[] = CLIENT_METROS.map((metro) => ({
  ...metro,
  subnet: `172.30.${metro.subnet.split('.')[1]}.0/24`,
}));
