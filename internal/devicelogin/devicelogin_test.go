package devicelogin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/embedgate/embedgate/emulator"
	"github.com/embedgate/embedgate/internal/testkit"
)

const (
	tenant   = "c0ffee00-0000-4000-8000-000000000001"
	cli      = "c0ffee00-0000-4000-8000-0000000000c1"
	alice    = "alice@embedgate-demo.onmicrosoft.com"
	carol    = "carol@embedgate-demo.onmicrosoft.com"
	pbiScope = "https://analysis.windows.net/powerbi/api/.default"
)

var codeRE = regexp.MustCompile(`enter the code ([A-Z0-9]+)`)

// signIn runs Token in the background, approves the device code it prints
// as user (through the emulator, as the user would on the page), and
// returns the result.
func signIn(t *testing.T, emu *emulator.Server, s *Session, prompt *testkit.Buffer, user string) string {
	t.Helper()
	type result struct {
		token string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		ar, err := s.Token(context.Background(), []string{pbiScope})
		done <- result{ar.AccessToken, err}
	}()
	var m []string
	testkit.Eventually(t, "the device code on the prompt", func() bool {
		m = codeRE.FindStringSubmatch(prompt.String())
		return m != nil
	})
	if err := emu.ApproveDeviceCode(m[1], user); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.token
	case <-time.After(time.Minute):
		t.Fatal("the sign-in did not end")
	}
	return ""
}

// TestDeviceLogin: the first run signs in with a device code, the next run
// (a new session on the same cache file) is silent; the file is private;
// with two accounts cached, --account chooses.
func TestDeviceLogin(t *testing.T) {
	t.Parallel()
	emu, err := emulator.Start(context.Background(), emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(emu.CACertPEM())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	cacheFile := filepath.Join(t.TempDir(), "cache", "msal.json")
	session := func(account string) (*Session, *testkit.Buffer) {
		prompt := &testkit.Buffer{}
		s, err := New(Config{Authority: emu.URL() + "/" + tenant, ClientID: cli, HTTPClient: hc, CacheFile: cacheFile, Prompt: prompt, Account: account})
		if err != nil {
			t.Fatal(err)
		}
		return s, prompt
	}

	s, prompt := session("")
	first := signIn(t, emu, s, prompt, alice)
	if !strings.Contains(prompt.String(), "https://www.microsoft.com/link") {
		t.Errorf("the prompt does not say where to sign in: %q", prompt.String())
	}
	fi, err := os.Stat(cacheFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if di, _ := os.Stat(filepath.Dir(cacheFile)); di.Mode().Perm() != 0o700 {
		t.Errorf("cache folder mode %v, want 0700", di.Mode().Perm())
	}

	codes := emu.Counters()[emulator.RouteDeviceCode]
	again, prompt2 := session("")
	ar, err := again.Token(context.Background(), []string{pbiScope})
	if err != nil {
		t.Fatal(err)
	}
	if got := emu.Counters()[emulator.RouteDeviceCode]; got != codes || prompt2.String() != "" {
		t.Errorf("the second run asked for a device code (%d more) or prompted %q", got-codes, prompt2.String())
	}
	if ar.AccessToken != first || ar.Account.PreferredUsername != alice {
		t.Errorf("the second run's token is not alice's cached one")
	}

	// Carol signs in too: with two accounts cached, one must be named.
	carolSession, carolPrompt := session(carol)
	signIn(t, emu, carolSession, carolPrompt, carol)
	both, _ := session("")
	if _, err := both.Token(context.Background(), []string{pbiScope}); err == nil || !strings.Contains(err.Error(), "--account") {
		t.Errorf("two cached accounts, none chosen: %v", err)
	}
	chosen, _ := session(alice)
	if ar, err := chosen.Token(context.Background(), []string{pbiScope}); err != nil || ar.Account.PreferredUsername != alice {
		t.Errorf("--account alice: %v, %v", ar.Account.PreferredUsername, err)
	}
}
