/** WeChat's answer to a call that succeeded with nothing to return. */
export const ok = { errcode: 0, errmsg: 'ok' };
/** WeChat's answer to a refused call. */
export const err = (errcode: number, errmsg: string) => ({ errcode, errmsg });
