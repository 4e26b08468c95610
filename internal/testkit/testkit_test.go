package testkit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBufferTakesConcurrentWrites(t *testing.T) {
	t.Parallel()
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(&b, "writer %d\n", i)
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "\n"); got != 800 {
		t.Errorf("lines = %d, want 800", got)
	}
}

func TestClockMovesOnlyWhenTold(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 7, 29, 12, 0, 0, 0, time.UTC)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	c.Advance(90 * time.Second)
	c.Advance(-30 * time.Second)
	if got, want := c.Now(), start.Add(time.Minute); !got.Equal(want) {
		t.Errorf("Now = %v, want %v", got, want)
	}
}

func TestPoll(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	if !poll(time.Minute, func() bool { return n.Add(1) == 5 }) {
		t.Errorf("a condition that holds on the 5th check was not seen")
	}
	start := time.Now()
	if poll(20*time.Millisecond, func() bool { return false }) {
		t.Errorf("a condition that never holds was reported to hold")
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Errorf("gave up after %s, before the deadline", waited)
	}
}

func TestSignJWT(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"iss": "https://issuer.test", "sub": "system:serviceaccount:ns:sa"}
	for _, tt := range []struct {
		key    crypto.Signer
		alg    string
		verify func(digest, sig []byte) bool
	}{
		{rsaKey, "RS256", func(d, sig []byte) bool { return rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, d, sig) == nil }},
		{ecKey, "ES256", func(d, sig []byte) bool {
			return len(sig) == 64 && ecdsa.Verify(&ecKey.PublicKey, d, new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		}},
	} {
		parts := strings.Split(SignJWT(t, tt.key, claims), ".")
		if len(parts) != 3 {
			t.Fatalf("%s: %d parts", tt.alg, len(parts))
		}
		var header map[string]any
		var got map[string]any
		for i, v := range []any{&header, &got} {
			b, err := base64.RawURLEncoding.DecodeString(parts[i])
			if err != nil || json.Unmarshal(b, v) != nil {
				t.Fatalf("%s: part %d does not decode", tt.alg, i)
			}
		}
		if header["alg"] != tt.alg || header["kid"] != "k1" || got["sub"] != claims["sub"] {
			t.Errorf("%s: header %v, claims %v", tt.alg, header, got)
		}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if !tt.verify(digest[:], sig) {
			t.Errorf("%s: the signature does not verify", tt.alg)
		}
	}
}
