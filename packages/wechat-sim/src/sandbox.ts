import type { AccountConfig } from '@wx-kf/shared/config';

/** The demo's account: only ever valid against the simulator. */
export const SANDBOX_ACCOUNT: AccountConfig = {
  appId: 'wxkfsandbox000001',
  appSecret: 'sandbox-app-secret',
  token: 'sandboxToken',
  aesKey: 'SandboxEncodingAESKeyForTheWxKfDemoOnly0000',
  type: 'miniprogram',
  // As a real account with an AES key is by default: only encrypted pushes.
  security: 'safe',
};

/** Where `pnpm start` puts the simulator in demo mode (and where `pnpm sim push` looks for it). */
export const DEFAULT_SIM_PORT = 4010;
