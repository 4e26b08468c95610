package testkit

import (
	"fmt"
	"strings"
)

// LargePolicyTenants writes n tenant entries of a policy's tenants block (at
// the indentation of two spaces), keys customer-00000 and up, shaped like a
// platform's: each with its workspace, three reports, a second workspace,
// RLS from templates, a dataset's roles, and limits. Ten thousand of them
// make about 6 MB of YAML: for tests and benchmarks of large policies.
func LargePolicyTenants(b *strings.Builder, n int) {
	uuid := func(kind, t, i int) string { return fmt.Sprintf("%08x-%04x-4000-8000-%012x", kind, i, t) }
	for t := range n {
		fmt.Fprintf(b, "  customer-%05d:   # customer %d of %d, onboarded by the platform's provisioning job\n", t, t, n)
		fmt.Fprintf(b, "    workspace_id: %s\n", uuid(0xa0, t, 0))
		fmt.Fprintf(b, "    reports: [%s, %s, %s]\n", uuid(0xb1, t, 1), uuid(0xb1, t, 2), uuid(0xb1, t, 3))
		fmt.Fprintf(b, "    workspaces:\n      - id: %s\n        reports: [%s]\n", uuid(0xa1, t, 0), uuid(0xb2, t, 1))
		b.WriteString("    rls:\n      roles: [Customer, Viewer]\n      username: \"{user}\"\n      custom_data: \"{tenant}/{user}\"\n")
		fmt.Fprintf(b, "      dataset_roles:\n        %s: [Region, Customer]\n", uuid(0xd1, t, 1))
		fmt.Fprintf(b, "    allow_edit: %v\n    max_lifetime: %dm\n", t%7 == 0, 30+t%31)
	}
}
