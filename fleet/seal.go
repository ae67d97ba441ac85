package fleet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// MinKeyLen is the shortest Config.Key New accepts (256 bits).
const MinKeyLen = 32

// envVersion starts every value this release writes. Releases before it
// stored the gateway's payload bare, starting with gateway.SharedFormat
// (1), so their entries are misses here and this release's are misses
// there. Bump it whenever the envelope below changes.
const envVersion byte = 2

// Envelope modes (the byte after envVersion). A reader accepts only its
// own mode: a keyed replica never accepts an unauthenticated entry, which
// anyone with write access to Redis could make.
const (
	modeBound  byte = 0 // no key: SHA-256 of the Redis key, then the payload in clear
	modeSealed byte = 1 // key: nonce, AES-256-GCM ciphertext, HMAC-SHA256 tag
)

const (
	bindLen  = sha256.Size
	nonceLen = 12
	tagLen   = sha256.Size
)

// keys is what New derives from Config.Key with HKDF-SHA256, one label
// per use, so that no key serves two purposes. A nil *keys means no
// Config.Key: values are bound to their Redis key but neither
// authenticated nor encrypted, and key hashes are bare SHA-256.
type keys struct {
	mac  []byte      // HMAC-SHA256 of (Redis key, envelope): the authenticator
	aead cipher.AEAD // AES-256-GCM, the Redis key as additional data
	name []byte      // HMAC-SHA256 key of the key hashes
}

// HKDF labels; changing one invalidates every entry of a keyed deployment.
const (
	labelMAC  = "dvgate fleet v2 payload mac"
	labelEnc  = "dvgate fleet v2 payload aes-256-gcm"
	labelName = "dvgate fleet v2 key hash"
)

func deriveKeys(secret []byte) (*keys, error) {
	if len(secret) == 0 {
		return nil, nil
	}
	if len(secret) < MinKeyLen {
		return nil, fmt.Errorf("fleet: Redis key is %d bytes, want at least %d: generate one with `openssl rand -base64 32` and give every replica of the deployment the same", len(secret), MinKeyLen)
	}
	derive := func(label string) ([]byte, error) {
		return hkdf.Key(sha256.New, secret, nil, label, 32)
	}
	k := &keys{}
	var err error
	if k.mac, err = derive(labelMAC); err != nil {
		return nil, fmt.Errorf("fleet: deriving the payload key: %w", err)
	}
	if k.name, err = derive(labelName); err != nil {
		return nil, fmt.Errorf("fleet: deriving the key-hash key: %w", err)
	}
	enc, err := derive(labelEnc)
	if err != nil {
		return nil, fmt.Errorf("fleet: deriving the encryption key: %w", err)
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("fleet: AES: %w", err)
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("fleet: AES-GCM: %w", err)
	}
	return k, nil
}

// hash names s in Redis: HMAC-SHA256 under the key-hash key when keyed
// (nobody without the key can recompute it from a guessed email), bare
// SHA-256 otherwise; 128 bits, hex.
func (k *keys) hash(s string) string {
	var sum []byte
	if k == nil {
		h := sha256.Sum256([]byte(s))
		sum = h[:]
	} else {
		m := hmac.New(sha256.New, k.name)
		m.Write([]byte(s))
		sum = m.Sum(nil)
	}
	return hex.EncodeToString(sum[:16])
}

// Why an entry read from Redis was refused (also the metric outcomes
// "rejected_<reason>" of op get).
const (
	rejectFormat   = "format"   // another envelope version or mode, or truncated
	rejectForged   = "forged"   // authenticator or binding to the Redis key does not match
	rejectOversize = "oversize" // larger than Config.MaxPayload
)

// errRejected wraps a refusal; its reason is one of the reject* constants.
type errRejected struct{ reason string }

func (e *errRejected) Error() string { return "fleet: Redis entry rejected: " + e.reason }

// seal wraps a gateway payload for storage under the Redis key rk.
func (k *keys) seal(rk string, payload []byte) []byte {
	if k == nil {
		b := make([]byte, 0, 2+bindLen+len(payload))
		b = append(b, envVersion, modeBound)
		bind := sha256.Sum256([]byte(rk))
		b = append(b, bind[:]...)
		return append(b, payload...)
	}
	b := make([]byte, 2+nonceLen, 2+nonceLen+len(payload)+k.aead.Overhead()+tagLen)
	b[0], b[1] = envVersion, modeSealed
	_, _ = rand.Read(b[2 : 2+nonceLen])
	b = k.aead.Seal(b, b[2:2+nonceLen], payload, []byte(rk))
	return append(b, k.tag(rk, b)...)
}

// tag is the HMAC-SHA256 of the Redis key (length-prefixed) and the
// envelope before the tag.
func (k *keys) tag(rk string, env []byte) []byte {
	m := hmac.New(sha256.New, k.mac)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(rk)))
	m.Write(n[:])
	m.Write([]byte(rk))
	m.Write(env)
	return m.Sum(nil)
}

// open returns the gateway payload of an envelope read from the Redis key
// rk, or an *errRejected.
func (k *keys) open(rk string, b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != envVersion {
		return nil, &errRejected{rejectFormat}
	}
	if k == nil {
		if b[1] != modeBound || len(b) < 2+bindLen {
			return nil, &errRejected{rejectFormat}
		}
		bind := sha256.Sum256([]byte(rk))
		if subtle.ConstantTimeCompare(bind[:], b[2:2+bindLen]) != 1 {
			return nil, &errRejected{rejectForged}
		}
		return b[2+bindLen:], nil
	}
	if b[1] != modeSealed || len(b) < 2+nonceLen+k.aead.Overhead()+tagLen {
		return nil, &errRejected{rejectFormat}
	}
	env, tag := b[:len(b)-tagLen], b[len(b)-tagLen:]
	if !hmac.Equal(tag, k.tag(rk, env)) {
		return nil, &errRejected{rejectForged}
	}
	p, err := k.aead.Open(nil, env[2:2+nonceLen], env[2+nonceLen:], []byte(rk))
	if err != nil {
		return nil, &errRejected{rejectForged}
	}
	return p, nil
}

func rejectReason(err error) (string, bool) {
	var r *errRejected
	if errors.As(err, &r) {
		return r.reason, true
	}
	return "", false
}
