/** An OpenID as this service accepts one (WeChat's are 28 characters of these). No imports: light to load. */
export const OPENID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
