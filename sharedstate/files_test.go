package sharedstate

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/testkit"
)

// TestKeysReloaded: a key added to the file is used without a restart;
// a file that no longer reads keeps the keys in use.
func TestKeysReloaded(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	oldKey, newKey := randomKey(t), randomKey(t)
	logs := &testkit.Buffer{}
	s, _ := openStore(t, r, logs, nil, oldKey)
	writer, _ := openStore(t, r, nil, nil, newKey)
	ctx := context.Background()
	grant := [32]byte{5}
	_, done, _ := writer.Claim(ctx, grant)
	done([]byte("sealed with the new key"), time.Now().Add(time.Minute))

	file := s.cfg.EncryptionKeyFile
	b64 := base64.StdEncoding.EncodeToString
	if err := os.WriteFile(file, []byte(b64(oldKey)+"\n"+b64(newKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the new key to be read", func() bool { return len(s.ring.Load().ids) == 2 })
	if v, _, err := s.Claim(ctx, grant); err != nil || string(v) != "sealed with the new key" {
		t.Fatalf("after the reload: %q, %v", v, err)
	}

	if err := os.WriteFile(file, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the bad file to be noticed", func() bool { return strings.Contains(logs.String(), "not reloaded") })
	if len(s.ring.Load().ids) != 2 {
		t.Fatal("a bad key file replaced the keys in use")
	}
	if strings.Contains(logs.String(), b64(oldKey)) || strings.Contains(logs.String(), b64(newKey)) {
		t.Error("a key appears in the log")
	}
}

// TestPasswordReread: the password file is read at each new connection,
// so a password rotated in Redis and in the file needs no restart.
func TestPasswordReread(t *testing.T) {
	t.Parallel()
	const first, second = "first-password", "second-password"
	r := testkit.StartRedis(t, testkit.RedisOptions{Password: first})
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := openStore(t, r, nil, func(c *Config) { c.PasswordFile = pw })
	ctx := context.Background()
	if _, err := s.Take(ctx, "caller", 1, 5); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, r)
	raw.Options().Password = first
	if err := raw.ConfigSet(ctx, "requirepass", second).Err(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pw, []byte(second+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := raw.ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the store to reconnect with the new password", func() bool {
		_, err := s.Take(ctx, "caller", 1, 5)
		return err == nil
	})
}
