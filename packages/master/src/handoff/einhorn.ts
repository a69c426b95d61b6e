/** einhorn's protocol: EINHORN_FD_COUNT, EINHORN_FD_n, EINHORN_FD_FAMILY_n (set for every group, see child-env.ts). */
import type { HandOff } from './types.js';

export const einhornHandOff: HandOff = {
  name: 'einhorn',
  env: () => ({}),
};
