package sharedstate

import (
	"context"
	"slices"

	"github.com/embedgate/embedgate/internal/filewatch"
)

// Secrets are files, re-read when they change, as every secret of
// Embedgate's: the password at each new connection to Redis (connections
// already open stay authenticated, as Redis keeps them after a password
// change), the encryption keys when their file changes. A key file that
// no longer reads keeps the keys in use, with a warning.

// credentials reads the password file for a new connection.
func (s *Store) credentials(context.Context) (string, string, error) {
	if s.cfg.PasswordFile == "" {
		return s.cfg.Username, "", nil
	}
	password, err := readSecret(s.cfg.PasswordFile)
	return s.cfg.Username, password, err
}

// watchKeys reloads the keyring when its file changes, until ctx ends.
func (s *Store) watchKeys(ctx context.Context) {
	defer s.watch.Done()
	err := filewatch.Watch(ctx, []string{s.cfg.EncryptionKeyFile}, s.reloadKeys, filewatch.Options{})
	if err != nil {
		s.log.Warn("shared state: encryption_key_file is not watched: new keys need a restart", "error", err)
	}
}

func (s *Store) reloadKeys() {
	r, err := loadKeyring(s.cfg.EncryptionKeyFile)
	if err != nil {
		s.log.Warn("shared state: encryption_key_file not reloaded; the keys in use stay", "error", err)
		return
	}
	if old := s.ring.Load(); slices.Equal(old.ids, r.ids) {
		return
	}
	s.ring.Store(r)
	s.log.Info("shared state: encryption keys reloaded", "keys", len(r.ids))
}
