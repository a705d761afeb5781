// Package kms defines key-encryption-key (KEK) custody for domicile.
//
// A cell never stores a data key in the clear: it wraps each one with its KEK,
// a small, versioned secret held by a custodian. The [KEK] interface is what a
// cell needs from any custodian; the implementations live in sibling packages:
//
//   - kms/filekms: a local keyring file (the embedded default; no policy);
//   - kms/pkcs11kms: AES-256 key objects in an HSM reached through PKCS#11;
//   - kms/keyd: an external custodian run by the customer over mutual TLS,
//     which rules on every unwrap with its own policy and logs its decision.
//
// Every unwrap carries an [Access]: who asks, from where, and why. Custodians
// with a policy rule on it; all of them receive it, so that the caller and the
// custodian can log the same facts. The conformance suite in kms/kmstest is
// run by every implementation.
package kms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Limits on what a KEK wraps. A KEK wraps keys, not data: the limits keep
// requests to remote custodians small and bounded.
const (
	// MaxPlaintextBytes is the largest plaintext Wrap accepts.
	MaxPlaintextBytes = 4096
	// MaxAADBytes is the largest associated data Wrap and Unwrap accept.
	MaxAADBytes = 4096
	// MaxCiphertextBytes is the largest ciphertext Unwrap accepts.
	MaxCiphertextBytes = MaxPlaintextBytes + 64
	// maxFieldBytes bounds each string field of an Access.
	maxFieldBytes = 256
)

// Roles an [Access] may carry: the actor kinds of domicile.
const (
	RoleApp       = "app"
	RoleSubject   = "subject"
	RoleOperator  = "operator"
	RoleAuthority = "authority"
	RoleAuditor   = "auditor"
	RoleAdmin     = "admin"
	RoleSystem    = "system"
)

// Reasons an [Access] may carry when its role is not [RoleApp]: a closed list,
// after Google's Key Access Justifications. Free text goes in Reference.
const (
	ReasonSupport               = "support"
	ReasonMaintenance           = "maintenance"
	ReasonLawfulRequestDomestic = "lawful-request-domestic"
	ReasonLawfulRequestForeign  = "lawful-request-foreign"
	ReasonEmergency             = "emergency"
	ReasonSubjectRequest        = "subject-request"
	ReasonRewrap                = "rewrap"
	// ReasonMigration is a data key unwrapped to move a subject to
	// another cell of the deployment (re-wrapped to the target cell's
	// key, never stored in the clear); Reference names the plan.
	ReasonMigration = "migration"
)

// ServiceReasonPrefix starts the reason of every [RoleApp] access:
// "service:<purpose>", the purpose the app declared.
const ServiceReasonPrefix = "service:"

// Roles lists every valid role, in a stable order.
var Roles = []string{RoleApp, RoleSubject, RoleOperator, RoleAuthority, RoleAuditor, RoleAdmin, RoleSystem}

// Reasons lists every valid reason for roles other than [RoleApp], in a stable order.
var Reasons = []string{ReasonSupport, ReasonMaintenance, ReasonLawfulRequestDomestic,
	ReasonLawfulRequestForeign, ReasonEmergency, ReasonSubjectRequest, ReasonRewrap, ReasonMigration}

// Access says who asks and why. It is carried with every unwrap so that
// custodians can rule on it and both sides can log it. It holds no personal
// data: Subject is a pseudonymous reference, never a raw subject id.
type Access struct {
	// Cell is the id of the cell that asks (for example "cn-gz1").
	Cell string `json:"cell"`
	// Role is one of [Roles].
	Role string `json:"role"`
	// Jurisdiction is where the actor acts from (ISO 3166-1 alpha-2 or a bloc such as "EU").
	Jurisdiction string `json:"jurisdiction"`
	// Reason is "service:<purpose>" for RoleApp, and one of [Reasons] otherwise.
	Reason string `json:"reason"`
	// Reference is a ticket, case or legal reference; policies may require one.
	Reference string `json:"reference,omitempty"`
	// Subject is a pseudonymous subject reference, never a raw subject id.
	Subject string `json:"subject,omitempty"`
}

// Validate reports whether a is well formed: a known role, a reason valid for
// that role, a cell, and bounded printable fields. It does not rule on policy.
func (a Access) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"cell", a.Cell}, {"role", a.Role}, {"jurisdiction", a.Jurisdiction},
		{"reason", a.Reason}, {"reference", a.Reference}, {"subject", a.Subject},
	} {
		if len(f.v) > maxFieldBytes {
			return fmt.Errorf("kms: access %s longer than %d bytes", f.name, maxFieldBytes)
		}
		for _, r := range f.v {
			if r < 0x20 || r == 0x7f || r == '\uFFFD' {
				return fmt.Errorf("kms: access %s holds a control or invalid character", f.name)
			}
		}
	}
	if a.Cell == "" {
		return errors.New("kms: access without a cell")
	}
	if a.Jurisdiction != "" && !isJurisdiction(a.Jurisdiction) {
		return errors.New("kms: access jurisdiction is not an upper-case two-letter code")
	}
	if !contains(Roles, a.Role) {
		return fmt.Errorf("kms: access role %q is not one of %s", a.Role, strings.Join(Roles, ", "))
	}
	if a.Role == RoleApp {
		purpose, ok := strings.CutPrefix(a.Reason, ServiceReasonPrefix)
		if !ok || purpose == "" {
			return errors.New(`kms: app access reason must be "service:<purpose>"`)
		}
		return nil
	}
	if !contains(Reasons, a.Reason) {
		return fmt.Errorf("kms: access reason %q is not one of %s", a.Reason, strings.Join(Reasons, ", "))
	}
	return nil
}

func isJurisdiction(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// KEK is a versioned key-encryption key held by a custodian.
//
// Implementations are safe for concurrent use. Versions start at 1 and only
// grow; a retired version is never reused.
type KEK interface {
	// ID returns the stable id of this KEK (for example "cn-gz1/kek").
	ID() string
	// Wrap encrypts plaintext (at most MaxPlaintextBytes) bound to aad (at most
	// MaxAADBytes) under the current version, and returns that version and the
	// ciphertext. Wrapping a 32-byte key SHOULD be cheap for local custodians.
	Wrap(ctx context.Context, plaintext, aad []byte) (version uint32, ciphertext []byte, err error)
	// Unwrap decrypts ciphertext made by Wrap under version with the same aad.
	// It MUST receive the Access that justifies it; custodians with a policy
	// rule on it and return a *DeniedError on refusal. A ciphertext or aad that
	// does not authenticate yields ErrInvalidCiphertext; a retired or unknown
	// version yields a *VersionError. No partial plaintext is ever returned.
	Unwrap(ctx context.Context, a Access, version uint32, ciphertext, aad []byte) ([]byte, error)
	// Rotate introduces a new current version and returns it. Older versions
	// remain available to Unwrap until retired.
	Rotate(ctx context.Context) (uint32, error)
	// Versions returns the current version and every version that can still
	// unwrap, in ascending order.
	Versions(ctx context.Context) (current uint32, all []uint32, err error)
	// Retire destroys version so that nothing can unwrap under it again. It
	// refuses the current version. The caller MUST first ensure that nothing
	// is wrapped under version any longer (re-wrap to the current version).
	Retire(ctx context.Context, version uint32) error
}

// ErrUnavailable means the custodian could not be reached or did not answer
// in time. It is transient: callers fail closed and answer 503 with a
// Retry-After header. Implementations wrap it with the cause:
// fmt.Errorf("%w: ...", kms.ErrUnavailable).
var ErrUnavailable = errors.New("kms: key custodian unavailable")

// ErrInvalidCiphertext means a ciphertext did not authenticate under its
// version and associated data: it was corrupted, truncated, or moved to
// another binding. Callers report the data as damaged, not the custodian as down.
var ErrInvalidCiphertext = errors.New("kms: wrapped key does not authenticate")

// DeniedError is returned when a custodian refuses an operation by policy.
type DeniedError struct {
	// Clause names the policy clause that decided, or "" for the default.
	Clause string
	// Reason is the custodian's sentence explaining the decision.
	Reason string
}

// Error implements error.
func (e *DeniedError) Error() string {
	if e.Clause == "" {
		return "kms: custodian denied access: " + e.Reason
	}
	return fmt.Sprintf("kms: custodian denied access by clause %q: %s", e.Clause, e.Reason)
}

// VersionError is returned for an operation on a version that does not exist,
// was retired, or may not be retired.
type VersionError struct {
	// KEK is the id of the KEK.
	KEK string
	// Version is the version asked for.
	Version uint32
	// Problem says what is wrong: "retired", "unknown" or "current".
	Problem string
}

// Error implements error.
func (e *VersionError) Error() string {
	switch e.Problem {
	case "current":
		return fmt.Sprintf("kms: %s version %d is current and cannot be retired", e.KEK, e.Version)
	default:
		return fmt.Sprintf("kms: %s version %d is %s", e.KEK, e.Version, e.Problem)
	}
}

// Decision is a custodian's ruling on one unwrap. Custodians with a policy
// return it to the caller, which records it alongside its own event.
type Decision struct {
	// Time is when the custodian decided, by its clock.
	Time time.Time `json:"time"`
	// Access is what the caller presented.
	Access Access `json:"access"`
	// Version is the KEK version asked for.
	Version uint32 `json:"version"`
	// Allowed reports the outcome.
	Allowed bool `json:"allowed"`
	// Clause names the deciding clause, or "" when the default applied.
	Clause string `json:"clause,omitempty"`
	// Reason is a sentence explaining the outcome.
	Reason string `json:"reason"`
}

// CheckWrap validates the sizes of a Wrap request. Implementations call it
// first so that every custodian enforces the same limits.
func CheckWrap(plaintext, aad []byte) error {
	if len(plaintext) == 0 {
		return errors.New("kms: empty plaintext")
	}
	if len(plaintext) > MaxPlaintextBytes {
		return fmt.Errorf("kms: plaintext longer than %d bytes", MaxPlaintextBytes)
	}
	if len(aad) > MaxAADBytes {
		return fmt.Errorf("kms: associated data longer than %d bytes", MaxAADBytes)
	}
	return nil
}

// CheckUnwrap validates an Unwrap request before any key is touched: the
// access is well formed and the sizes are within limits.
func CheckUnwrap(a Access, version uint32, ciphertext, aad []byte) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if version == 0 {
		return errors.New("kms: version 0 does not exist")
	}
	if len(ciphertext) > MaxCiphertextBytes {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidCiphertext, MaxCiphertextBytes)
	}
	if len(aad) > MaxAADBytes {
		return fmt.Errorf("kms: associated data longer than %d bytes", MaxAADBytes)
	}
	return nil
}
