package sharedstate

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(t *testing.T, keys ...[]byte) *keyring {
	t.Helper()
	r, err := newKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	grantA = []byte("grant A: the sha256 of one whole request")
	grantB = []byte("grant B: the sha256 of another request..")
	secret = []byte(`{"token":"H4sIAAAAAAAEAC2STQ-an-embed-token"}`)
)

func TestSealOpens(t *testing.T) {
	t.Parallel()
	r := ring(t, randomKey(t))
	entry := r.sealEntry(secret, grantA)
	if bytes.Contains(entry, secret) || bytes.Contains(entry, []byte("embed-token")) {
		t.Fatal("the entry holds the token in clear")
	}
	got, err := r.openEntry(entry, grantA)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open = %q, %v; want the sealed value", got, err)
	}
	if again := r.sealEntry(secret, grantA); bytes.Equal(again, entry) {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
}

// TestTamperedEntriesDoNotOpen: any changed byte, a truncated entry, an
// entry moved to another grant's name, or another format version is a
// miss.
func TestTamperedEntriesDoNotOpen(t *testing.T) {
	t.Parallel()
	r := ring(t, randomKey(t))
	entry := r.sealEntry(secret, grantA)
	for i := range entry {
		bad := bytes.Clone(entry)
		bad[i] ^= 0x01
		if _, err := r.openEntry(bad, grantA); !errors.Is(err, errUnreadable) {
			t.Errorf("byte %d flipped: err = %v, want errUnreadable", i, err)
		}
	}
	for _, n := range []int{0, 1, headerLen, headerLen + nonceLen, len(entry) - 1} {
		if _, err := r.openEntry(entry[:n], grantA); !errors.Is(err, errUnreadable) {
			t.Errorf("truncated to %d bytes: err = %v, want errUnreadable", n, err)
		}
	}
	if _, err := r.openEntry(entry, grantB); !errors.Is(err, errUnreadable) {
		t.Errorf("under another grant's name: err = %v, want errUnreadable", err)
	}
	if _, err := r.openEntry(append(bytes.Clone(entry), 0), grantA); !errors.Is(err, errUnreadable) {
		t.Errorf("a byte appended: err = %v, want errUnreadable", err)
	}
}

func TestWrongKeyDoesNotOpen(t *testing.T) {
	t.Parallel()
	entry := ring(t, randomKey(t)).sealEntry(secret, grantA)
	if _, err := ring(t, randomKey(t)).openEntry(entry, grantA); !errors.Is(err, errUnreadable) {
		t.Fatalf("err = %v, want errUnreadable", err)
	}
	// Even with the other key's id: the tag does not verify.
	other := randomKey(t)
	r := ring(t, other)
	forged := bytes.Clone(entry)
	id := keyID(other)
	copy(forged[1:headerLen], id[:])
	if _, err := r.openEntry(forged, grantA); !errors.Is(err, errUnreadable) {
		t.Fatalf("with the reader's key id: err = %v, want errUnreadable", err)
	}
}

// TestKeyRotation follows the documented rotation: [old], then [old, new]
// (new opens, old seals), then [new, old] (new seals, both open), then
// [new]: at every step each replica opens what the others write, except
// a lone [new] with an entry sealed by old, which is a miss.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := randomKey(t), randomKey(t)
	start, step1, step2, end := ring(t, oldKey), ring(t, oldKey, newKey), ring(t, newKey, oldKey), ring(t, newKey)
	opens := func(writer, reader *keyring) bool {
		_, err := reader.openEntry(writer.sealEntry(secret, grantA), grantA)
		return err == nil
	}
	for _, c := range []struct {
		name           string
		writer, reader *keyring
		want           bool
	}{
		{"start -> step1", start, step1, true},
		{"step1 -> start", step1, start, true},
		{"step1 -> step2", step1, step2, true},
		{"step2 -> step1", step2, step1, true},
		{"step2 -> end", step2, end, true},
		{"end -> step2", end, step2, true},
		{"start -> end (skipped steps)", start, end, false},
		{"end -> start", end, start, false},
	} {
		if got := opens(c.writer, c.reader); got != c.want {
			t.Errorf("%s: opens = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLoadKeyring(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, k2 := randomKey(t), randomKey(t)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b64 := base64.StdEncoding.EncodeToString
	for _, c := range []struct {
		name, content string
		wantKeys      int
		wantErr       string
	}{
		{"raw", string(k1), 1, ""},
		{"base64", b64(k1) + "\n", 1, ""},
		{"ring", "# current\n" + b64(k2) + "\n\n# previous\n" + b64(k1) + "\n", 2, ""},
		{"empty", "\n# nothing\n", 0, "holds no key"},
		{"short", b64(k1[:16]) + "\n", 0, "line 1 is not a base64 32-byte key"},
		{"not base64", b64(k1) + "\nnot-a-key!\n", 0, "line 2 is not a base64 32-byte key"},
		{"repeated", b64(k1) + "\n" + b64(k1) + "\n", 0, "repeats"},
	} {
		r, err := loadKeyring(write(c.name, c.content))
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err = %v, want %q", c.name, err, c.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), b64(k1)) || strings.Contains(err.Error(), "not-a-key")) {
				t.Errorf("%s: the error quotes the file: %v", c.name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case len(r.ids) != c.wantKeys:
			t.Errorf("%s: %d keys, want %d", c.name, len(r.ids), c.wantKeys)
		}
	}
	r, err := loadKeyring(filepath.Join(dir, "ring"))
	if err != nil {
		t.Fatal(err)
	}
	if r.seal.id != keyID(k2) {
		t.Error("the first line does not seal")
	}
}
