/** A push whose `signature` or `msg_signature` does not match (or is missing). */
export class SignatureError extends Error {
  override readonly name = 'SignatureError';
}

export type DecryptFailure =
  | 'bad_aes_key'
  | 'bad_base64'
  | 'bad_length'
  | 'bad_padding'
  | 'bad_length_field'
  | 'appid_mismatch';

const decryptMessages: Record<DecryptFailure, string> = {
  bad_aes_key: 'EncodingAESKey must be 43 characters of [A-Za-z0-9]',
  bad_base64: 'Encrypt is not valid base64',
  bad_length: 'ciphertext length is not a positive multiple of 32 bytes',
  bad_padding: 'PKCS#7 padding is invalid (wrong key or tampered ciphertext)',
  bad_length_field: 'message length field points past the end (wrong key or tampered ciphertext)',
  appid_mismatch: 'decrypted AppID does not match this account',
};

/** A ciphertext that cannot be decrypted into a message for this account; `reason` says why. */
export class DecryptError extends Error {
  override readonly name = 'DecryptError';
  constructor(readonly reason: DecryptFailure) {
    super(decryptMessages[reason]);
  }
}

/** A body that is not a well-formed WeChat push (XML/JSON syntax, shape, required fields, limits). */
export class MessageFormatError extends Error {
  override readonly name = 'MessageFormatError';
}
