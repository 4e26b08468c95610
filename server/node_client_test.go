package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// nodeClientDir holds client.js, a Node.js caller built on @grpc/grpc-js and
// @grpc/proto-loader with versions pinned in its package-lock.json. Its
// node_modules is not committed: `npm ci` there installs it.
const nodeClientDir = "testdata/nodeclient"

// nodeResult is the JSON line client.js prints.
type nodeResult struct {
	OK       bool `json:"ok"`
	Response struct {
		Token      string `json:"token"`
		TokenID    string `json:"token_id"`
		ExpireTime struct {
			Seconds string `json:"seconds"` // int64 as a string (longs: String)
		} `json:"expire_time"`
		Reports []struct {
			ID        string `json:"id"`
			EmbedURL  string `json:"embed_url"`
			DatasetID string `json:"dataset_id"`
		} `json:"reports"`
	} `json:"response"`
	Code      int    `json:"code"`
	CodeName  string `json:"code_name"`
	Message   string `json:"message"`
	ErrorInfo *struct {
		Reason string `json:"reason"`
		Domain string `json:"domain"`
	} `json:"error_info"`
	Error string `json:"error"` // the client itself failed (exit 2)
}

// TestNodeClient proves that a non-Go caller works: a Node.js gRPC client,
// with only the .proto files and its own mTLS stack, mints a token, and gets
// the same status codes and ErrorInfo reasons a Go caller gets.
func TestNodeClient(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: skipping the Node.js client test")
	}
	if _, err := os.Stat(filepath.Join(nodeClientDir, "node_modules", "@grpc", "grpc-js")); err != nil {
		t.Skipf("%s/node_modules is not installed: run `npm ci --ignore-scripts` in server/%s to run the Node.js client test", nodeClientDir, nodeClientDir)
	}

	s := startStack(t, stackOptions{})
	dir := t.TempDir()
	writeFile(t, dir, "ca.pem", string(s.ca.CertPEM))
	for name, id := range map[string]string{"frontend": frontend, "stranger": stranger} {
		kp, err := s.ca.IssueClient(id)
		must(t, err)
		writeFile(t, dir, name+".pem", string(kp.CertPEM))
		writeFile(t, dir, name+"-key.pem", string(kp.KeyPEM))
	}

	// run calls GenerateEmbedToken with client.js as caller, and returns
	// its JSON line and exit code.
	run := func(t *testing.T, caller, request string) (nodeResult, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "client.js")
		cmd.Dir = nodeClientDir
		cmd.Env = append(os.Environ(),
			"EMBEDGATE_ADDR="+s.addr,
			"EMBEDGATE_CA="+filepath.Join(dir, "ca.pem"),
			"EMBEDGATE_CERT="+filepath.Join(dir, caller+".pem"),
			"EMBEDGATE_KEY="+filepath.Join(dir, caller+"-key.pem"),
			"EMBEDGATE_SERVER_NAME=localhost",
			"EMBEDGATE_REQUEST="+request,
		)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		exit := 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			exit = ee.ExitCode()
		case err != nil:
			t.Fatalf("node client.js: %v\nstderr: %s", err, stderr.String())
		}
		var r nodeResult
		if err := json.Unmarshal(stdout, &r); err != nil {
			t.Fatalf("node client.js (exit %d) printed no JSON line: %v\nstderr: %s", exit, err, stderr.String())
		}
		if r.Response.Token != "" { // the leak scan must look for it in the logs
			watchForLeaks(nil, r.Response.Token)
		}
		if r.Error != "" {
			t.Fatalf("node client.js failed (exit %d): %s\nstderr: %s", exit, r.Error, stderr.String())
		}
		return r, exit
	}

	t.Run("RLS tenant gets a token with its identity", func(t *testing.T) {
		r, exit := run(t, "frontend", `{"tenant":"acme","user":"alice@acme.example","report_ids":["`+salesReport+`"]}`)
		if exit != 0 || !r.OK {
			t.Fatalf("exit %d, ok %v, code %d %s: %s; want exit 0 and a token", exit, r.OK, r.Code, r.CodeName, r.Message)
		}
		if r.Response.Token == "" || r.Response.TokenID == "" || r.Response.ExpireTime.Seconds == "" {
			t.Errorf("token present %v, token_id %q, expire_time.seconds %q: want all set", r.Response.Token != "", r.Response.TokenID, r.Response.ExpireTime.Seconds)
		}
		if len(r.Response.Reports) != 1 || r.Response.Reports[0].ID != salesReport || r.Response.Reports[0].DatasetID != salesDataset || r.Response.Reports[0].EmbedURL == "" {
			t.Errorf("reports = %+v, want one: %s on dataset %s with an embed URL", r.Response.Reports, salesReport, salesDataset)
		}
		want := granted{
			Reports:    []string{salesReport},
			Datasets:   []string{salesDataset},
			Identities: []grantedIdentity{{Username: "alice@acme.example", Roles: []string{"Customer"}, CustomData: "acme", Datasets: []string{salesDataset}}},
		}
		if diff := cmp.Diff(want, lookup(t, s.emu, r.Response.TokenID)); diff != "" {
			t.Errorf("the token grants (-want +got):\n%s", diff)
		}
	})

	errorCases := []struct {
		name, caller, request string
		wantCode              int
		wantCodeName          string
		wantReason            string
	}{
		{
			name:         "caller not in the policy",
			caller:       "stranger",
			request:      `{"tenant":"acme","user":"alice@acme.example","report_ids":["` + salesReport + `"]}`,
			wantCode:     7,
			wantCodeName: "PERMISSION_DENIED",
			wantReason:   "CALLER_NOT_IN_POLICY",
		},
		{
			name:         "malformed report id",
			caller:       "frontend",
			request:      `{"tenant":"acme","user":"alice@acme.example","report_ids":["nope"]}`,
			wantCode:     3,
			wantCodeName: "INVALID_ARGUMENT",
			wantReason:   "INVALID_REQUEST",
		},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			r, exit := run(t, tc.caller, tc.request)
			if exit != 1 || r.OK {
				t.Fatalf("exit %d, ok %v: want exit 1 and a gRPC error", exit, r.OK)
			}
			if r.Code != tc.wantCode || r.CodeName != tc.wantCodeName || r.Message == "" {
				t.Errorf("code %d %s, message %q: want %d %s with a message", r.Code, r.CodeName, r.Message, tc.wantCode, tc.wantCodeName)
			}
			if r.ErrorInfo == nil || r.ErrorInfo.Reason != tc.wantReason || r.ErrorInfo.Domain != "embedgate" {
				t.Errorf("error_info = %+v, want reason %s in domain embedgate", r.ErrorInfo, tc.wantReason)
			}
		})
	}
}
