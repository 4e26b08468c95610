package sharedstate

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// What an entry looks like in Redis:
//
//	version (1 byte) | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// sealed with the additional data version | key id | the grant key, so an
// entry opens only under the name it was written for, with the key it
// names. An entry that does not open (a key this replica lacks, another
// format version, altered bytes) is a miss, never an error for a caller.
const (
	sealVersion = 1
	keyIDLen    = 4
	headerLen   = 1 + keyIDLen
	nonceLen    = 12
)

// errUnreadable is an entry this replica cannot open.
var errUnreadable = errors.New("an entry this replica cannot open (another encryption key, another format, or altered)")

// keyring holds the encryption keys: the first seals, each opens what it
// sealed (found by its key id).
type keyring struct {
	seal sealKey
	byID map[[keyIDLen]byte]cipher.AEAD
	ids  [][keyIDLen]byte // in the file's order
}

type sealKey struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
}

// loadKeyring reads a key file: the 32 raw bytes of one key, or lines of
// base64 32-byte keys (blank lines and # comments ignored), the first one
// sealing. Errors never contain key material.
func loadKeyring(path string) (*keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	var keys [][]byte
	if len(b) == 32 {
		keys = [][]byte{b}
	} else {
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, err := base64.StdEncoding.DecodeString(line)
			if err != nil || len(k) != 32 {
				return nil, fmt.Errorf("%s: line %d is not a base64 32-byte key (make one with: openssl rand -base64 32)", path, i+1)
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no key (make one with: openssl rand -base64 32)", path)
	}
	return newKeyring(keys)
}

// newKeyring builds a keyring from 32-byte keys, the first one sealing.
func newKeyring(keys [][]byte) (*keyring, error) {
	r := &keyring{byID: map[[keyIDLen]byte]cipher.AEAD{}}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("key %d: want 32 bytes, got %d", i+1, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := keyID(k)
		if _, dup := r.byID[id]; dup {
			return nil, fmt.Errorf("key %d repeats an earlier key", i+1)
		}
		r.byID[id] = aead
		r.ids = append(r.ids, id)
		if i == 0 {
			r.seal = sealKey{id: id, aead: aead}
		}
	}
	return r, nil
}

// keyID names a key in the entries it seals: 4 bytes of a hash of it,
// which say nothing about the key itself.
func keyID(k []byte) [keyIDLen]byte {
	h := sha256.Sum256(append([]byte("embedgate shared state key id\x00"), k...))
	return [keyIDLen]byte(h[:keyIDLen])
}

// sealEntry encrypts value with the sealing key, bound to grant.
func (r *keyring) sealEntry(value, grant []byte) []byte {
	out := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(value)+r.seal.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:headerLen], r.seal.id[:])
	if _, err := rand.Read(out[headerLen : headerLen+nonceLen]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return r.seal.aead.Seal(out, out[headerLen:headerLen+nonceLen], value, additionalData(out[:headerLen], grant))
}

// openEntry decrypts an entry sealed for grant, or returns errUnreadable.
func (r *keyring) openEntry(entry, grant []byte) ([]byte, error) {
	if len(entry) < headerLen+nonceLen || entry[0] != sealVersion {
		return nil, errUnreadable
	}
	aead, ok := r.byID[[keyIDLen]byte(entry[1:headerLen])]
	if !ok {
		return nil, errUnreadable
	}
	v, err := aead.Open(nil, entry[headerLen:headerLen+nonceLen], entry[headerLen+nonceLen:], additionalData(entry[:headerLen], grant))
	if err != nil {
		return nil, errUnreadable
	}
	return v, nil
}

func additionalData(header, grant []byte) []byte {
	return bytes.Join([][]byte{header, grant}, nil)
}
