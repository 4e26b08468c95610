package sharedstate

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/embedgate/embedgate/internal/yamlfile"
)

// Defaults applied when the config leaves a value zero.
const (
	// DefaultKeyPrefix starts every Redis key Embedgate writes, so that a
	// Redis shared with other services (or other Embedgate fleets, with
	// their own prefix) keeps them apart.
	DefaultKeyPrefix = "embedgate:"
	// DefaultTimeout bounds each Redis command, dial included. A Redis
	// next to the replicas answers in a millisecond; one that takes longer
	// than this is treated as down, and the call goes on without it.
	DefaultTimeout = 250 * time.Millisecond
	// DefaultMintLease is how long a replica's lease on a grant's mint
	// lasts without renewal. The holder renews it every third of this
	// while it mints, so it bounds only how long the others wait for a
	// replica that died while minting.
	DefaultMintLease = 5 * time.Second
)

// Config is the `shared_state:` block of the server config: Redis (or
// Valkey) shared by the replicas of a fleet. Empty (the default), every
// replica keeps its token cache and rate limits to itself. The yaml key
// names are a contract with operators; keep them.
type Config struct {
	// Address is the host:port of the Redis or Valkey server (a standalone
	// server or a managed service's primary endpoint). Setting it turns
	// shared state on.
	Address string `yaml:"address"`
	// Username is the Redis ACL user ("" = the default user).
	Username string `yaml:"username"`
	// PasswordFile holds the password (AUTH); trailing whitespace trimmed.
	PasswordFile string `yaml:"password_file"`
	// Database is the Redis database number (SELECT), default 0.
	Database int `yaml:"database"`
	// TLS, when enabled, connects over TLS.
	TLS TLSConfig `yaml:"tls"`
	// KeyPrefix starts every key (DefaultKeyPrefix).
	KeyPrefix string `yaml:"key_prefix"`
	// EncryptionKeyFile holds the keys that encrypt embed tokens at rest in
	// Redis (AES-256-GCM): one or more lines, each a base64 32-byte key
	// (`openssl rand -base64 32`), or the 32 raw bytes alone. The first
	// line encrypts; every line decrypts, so a key is rotated by adding the
	// new one second, then moving it first, then removing the old one
	// (each step a rolling restart). Required.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// Timeout bounds each Redis command (DefaultTimeout).
	Timeout time.Duration `yaml:"timeout"`
	// MintLease is how long a replica's lease on a mint lasts unless
	// renewed (DefaultMintLease): the longest the other replicas wait for
	// a replica that died while minting the grant they want.
	MintLease time.Duration `yaml:"mint_lease"`
}

// TLSConfig is how Embedgate connects to Redis over TLS.
type TLSConfig struct {
	// Enabled turns TLS on (Redis' tls-port, a managed service's TLS
	// endpoint).
	Enabled bool `yaml:"enabled"`
	// CAFile adds root CAs (PEM) to the system pool to verify the server.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and key (PEM), for a
	// server that asks for one (tls-auth-clients).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server's certificate must carry (default:
	// the host of Address).
	ServerName string `yaml:"server_name"`
}

// Enabled reports whether shared state is configured.
func (c Config) Enabled() bool { return c.Address != "" }

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MintLease == 0 {
		c.MintLease = DefaultMintLease
	}
	return c
}

// Files returns pointers to every file path of the block, for the server
// config to resolve them against the config file's folder.
func (c *Config) Files() []*string {
	return []*string{&c.PasswordFile, &c.EncryptionKeyFile, &c.TLS.CAFile, &c.TLS.CertFile, &c.TLS.KeyFile}
}

// Validate returns every problem of the block (nil if none), keyed
// relative to it; the server config prefixes them. It reads the files it
// names and never touches the network.
func (c Config) Validate() []yamlfile.Problem {
	var ps []yamlfile.Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, yamlfile.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	if c == (Config{}) {
		return nil
	}
	if c.Address == "" {
		add("address", "required: the host:port of Redis (remove the shared_state block to keep state per process)")
	} else if host, port, err := net.SplitHostPort(c.Address); err != nil || host == "" || port == "" {
		add("address", "want host:port, got %q", c.Address)
	}
	if c.PasswordFile != "" {
		if _, err := readSecret(c.PasswordFile); err != nil {
			add("password_file", "%v", err)
		}
	}
	if c.Database < 0 {
		add("database", "must not be negative")
	}
	c.TLS.validate(add)
	if len(c.KeyPrefix) > 64 || strings.IndexFunc(c.KeyPrefix, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		add("key_prefix", "want at most 64 printable characters without spaces, got %q", c.KeyPrefix)
	}
	if c.EncryptionKeyFile == "" {
		add("encryption_key_file", "required: embed tokens are stored in Redis only encrypted")
	} else if _, err := loadKeyring(c.EncryptionKeyFile); err != nil {
		add("encryption_key_file", "%v", err)
	}
	if c.Timeout < 0 {
		add("timeout", "must not be negative")
	}
	if c.MintLease < 0 || (c.MintLease > 0 && c.MintLease < 300*time.Millisecond) {
		add("mint_lease", "want at least 300ms (0 keeps the default, %v)", DefaultMintLease)
	}
	return ps
}

func (t TLSConfig) validate(add func(key, format string, args ...any)) {
	if !t.Enabled {
		if t != (TLSConfig{}) {
			add("tls.enabled", "the tls keys are set but enabled is false: set enabled: true, or remove them")
		}
		return
	}
	if t.CAFile != "" {
		if b, err := os.ReadFile(t.CAFile); err != nil {
			add("tls.ca_file", "cannot read: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			add("tls.ca_file", "no PEM certificate found in %s", t.CAFile)
		}
	}
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		add("tls.cert_file", "cert_file and key_file go together")
	case t.CertFile != "":
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			add("tls.cert_file", "cannot load the key pair: %v", err)
		}
	}
}

// tlsConfig builds the client's TLS config (nil when TLS is off).
func (c Config) tlsConfig() (*tls.Config, error) {
	t := c.TLS
	if !t.Enabled {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		pool.AppendCertsFromPEM(b)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: t.ServerName}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(c.Address)
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// readSecret reads a secret file: trailing whitespace trimmed, empty is an
// error. The error never contains the content.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n\t ")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
