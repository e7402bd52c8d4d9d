import type { AccountConfig } from '@wx-kf/shared/config';
import type { SimCorp } from './wecom-core.js';

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

/** The demo's WeCom corp with 微信客服 (the pull channel): only ever valid against the simulator. */
export const SANDBOX_WECOM: SimCorp = {
  corpId: 'wwsandbox00000000',
  secret: 'sandbox-kf-secret',
  token: 'sandboxWeComToken',
  aesKey: 'SandboxWeComEncodingAESKeyForTheWxKfDemo000',
  kfAccounts: [{ openKfId: 'wksandbox0000000000000000000000', name: '沙盒客服' }],
};

/** The same corp as the services configure it: a `wecom-kf` account, the CorpID as appId, the 微信客服 secret. */
export const SANDBOX_WECOM_ACCOUNT: AccountConfig = {
  appId: SANDBOX_WECOM.corpId,
  appSecret: SANDBOX_WECOM.secret,
  token: SANDBOX_WECOM.token,
  aesKey: SANDBOX_WECOM.aesKey,
  type: 'wecom-kf',
  security: 'safe',
};
