package kms

import (
	"errors"
	"strings"
	"testing"
)

func TestAccessValidate(t *testing.T) {
	ok := Access{Cell: "cn-gz1", Role: RoleOperator, Jurisdiction: "CN", Reason: ReasonSupport, Reference: "T-1", Subject: "psn-1"}
	for _, tc := range []struct {
		name   string
		modify func(*Access)
		valid  bool
	}{
		{"operator with support", func(*Access) {}, true},
		{"app with purpose", func(a *Access) { a.Role, a.Reason = RoleApp, "service:messaging" }, true},
		{"system rewrap without jurisdiction", func(a *Access) { a.Role, a.Reason, a.Jurisdiction = RoleSystem, ReasonRewrap, "" }, true},
		{"no cell", func(a *Access) { a.Cell = "" }, false},
		{"unknown role", func(a *Access) { a.Role = "root" }, false},
		{"empty role", func(a *Access) { a.Role = "" }, false},
		{"free-text reason", func(a *Access) { a.Reason = "needed it" }, false},
		{"operator claiming a service reason", func(a *Access) { a.Reason = "service:billing" }, false},
		{"app with closed-list reason", func(a *Access) { a.Role = RoleApp }, false},
		{"app with empty purpose", func(a *Access) { a.Role, a.Reason = RoleApp, "service:" }, false},
		{"lower-case jurisdiction", func(a *Access) { a.Jurisdiction = "cn" }, false},
		{"three-letter jurisdiction", func(a *Access) { a.Jurisdiction = "CHN" }, false},
		{"control character", func(a *Access) { a.Reference = "T-1\nforged: line" }, false},
		{"invalid UTF-8", func(a *Access) { a.Subject = "\xff" }, false},
		{"overlong field", func(a *Access) { a.Reference = strings.Repeat("x", 257) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := ok
			tc.modify(&a)
			err := a.Validate()
			if (err == nil) != tc.valid {
				t.Errorf("%+v.Validate() = %v, want valid=%v", a, err, tc.valid)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "kms: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestCheckLimits(t *testing.T) {
	a := Access{Cell: "c", Role: RoleApp, Reason: "service:x"}
	if err := CheckWrap(make([]byte, MaxPlaintextBytes), make([]byte, MaxAADBytes)); err != nil {
		t.Errorf("CheckWrap at the limits = %v", err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"empty plaintext", CheckWrap(nil, nil)},
		{"long plaintext", CheckWrap(make([]byte, MaxPlaintextBytes+1), nil)},
		{"long aad", CheckWrap([]byte{1}, make([]byte, MaxAADBytes+1))},
		{"version 0", CheckUnwrap(a, 0, nil, nil)},
		{"long aad on unwrap", CheckUnwrap(a, 1, nil, make([]byte, MaxAADBytes+1))},
	} {
		if tc.err == nil {
			t.Errorf("%s: nil error, want refusal", tc.name)
		}
	}
	if err := CheckUnwrap(a, 1, make([]byte, MaxCiphertextBytes+1), nil); !errors.Is(err, ErrInvalidCiphertext) {
		t.Errorf("CheckUnwrap(oversized ciphertext) = %v, want ErrInvalidCiphertext", err)
	}
}

func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&DeniedError{Clause: "no-ops", Reason: "operators are not allowed"}, `kms: custodian denied access by clause "no-ops": operators are not allowed`},
		{&DeniedError{Reason: "default deny"}, "kms: custodian denied access: default deny"},
		{&VersionError{KEK: "cn-gz1/kek", Version: 3, Problem: "retired"}, "kms: cn-gz1/kek version 3 is retired"},
		{&VersionError{KEK: "cn-gz1/kek", Version: 4, Problem: "current"}, "kms: cn-gz1/kek version 4 is current and cannot be retired"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
