package main

import "testing"

// TestRedactBlobs: the identity blobs of a GenerateToken body read
// "[redacted]", in both places Power BI takes them; the rest is unchanged.
func TestRedactBlobs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`{"datasets":[{"id":"d"}],"reports":[{"id":"r","allowEdit":false}]}`, `{"datasets":[{"id":"d"}],"reports":[{"id":"r","allowEdit":false}]}`},
		{`{"identities":[{"username":"a","datasets":["d"],"identityBlob":{"value":"eyJ0.secret.sig"}}]}`, `{"identities":[{"username":"a","datasets":["d"],"identityBlob":{"value":"[redacted]"}}]}`},
		{`{"datasourceIdentities":[{"identityBlob":"eyJ0.other.sig","datasources":[{"datasourceType":"Sql"}]}]}`, `{"datasourceIdentities":[{"identityBlob":"[redacted]","datasources":[{"datasourceType":"Sql"}]}]}`},
		{`{"identityBlob": not json`, "[a body with an identity blob, not shown]"},
	} {
		if got := redactBlobs([]byte(tc.in)); got != tc.want {
			t.Errorf("redactBlobs(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
