// Package ledger holds the data types of the transfer gateway's ledger:
// counts, transfer records and consents. It imports only the root package,
// so that storage adapters can implement the gateway's store without
// importing the gateway (and the cells it drives).
package ledger

import (
	"time"

	"domicile"
)

// Kind is the kind of a legal basis for transfers; package transfer
// defines the kinds.
type Kind string

// Exemption reports whether k documents an exemption on its own ground:
// transfers under it are left out of the threshold counts.
func (k Kind) Exemption() bool { return len(k) > 10 && k[:10] == "exemption_" }

// Class separates the two counts the 2024 Provisions keep apart.
type Class string

// Classes of personal information counted.
const (
	// ClassPI counts people whose non-sensitive personal information left.
	ClassPI Class = "pi"
	// ClassSPI counts people whose sensitive personal information left
	// (PIPL Art. 28).
	ClassSPI Class = "spi"
)

// Breakdown dimensions of a count.
const (
	DimTotal       = ""
	DimMechanism   = "mechanism"
	DimDestination = "destination"
)

// CountKey names one distinct count of the ledger: the people of a class
// whose data one legal entity sent abroad from one source jurisdiction in
// one calendar year, in total or for one mechanism or destination.
type CountKey struct {
	Entity string                `json:"entity"`
	Year   int                   `json:"year"`
	Source domicile.Jurisdiction `json:"source"`
	Class  Class                 `json:"class"`
	Dim    string                `json:"dim,omitempty"`
	Value  string                `json:"value,omitempty"`
}

// Count is a CountKey and its value.
type Count struct {
	CountKey
	N int64 `json:"n"`
}

// Channels by which data left.
const (
	ChannelExport = "export" // an export bundle through the gate
	ChannelRemote = "remote" // a read by an actor acting from abroad
	ChannelImport = "import" // a transfer made before, imported
)

// Record is one transfer as the ledger keeps it: the evidence a filing or
// an audit needs. It holds no subject id.
type Record struct {
	ID          string                `json:"id"`
	Time        time.Time             `json:"time"`
	Entity      string                `json:"entity"`
	Year        int                   `json:"year"`
	Source      domicile.Jurisdiction `json:"source"`
	Destination domicile.Jurisdiction `json:"destination"`
	Recipient   string                `json:"recipient"`
	Purpose     string                `json:"purpose"`
	Channel     string                `json:"channel"`
	// Mechanism is the registered mechanism used ("" when none was
	// needed), Kind its kind, and Law the mechanism the law engine
	// required.
	Mechanism string   `json:"mechanism,omitempty"`
	Kind      Kind     `json:"mechanism_kind,omitempty"`
	Law       string   `json:"law_mechanism,omitempty"`
	Rules     []string `json:"rules,omitempty"`
	// Counted is false for transfers exempt on their own ground, which
	// the thresholds leave out.
	Counted    bool                `json:"counted"`
	Subjects   int64               `json:"subjects"`
	NewPI      int64               `json:"new_pi"`
	NewSPI     int64               `json:"new_sensitive_pi"`
	Categories []domicile.Category `json:"categories"`
	Fields     []string            `json:"fields,omitempty"`
	Token      string              `json:"token,omitempty"`
}

// Add asks the ledger to add subjects to one count: those not yet in it
// raise it by one each.
type Add struct {
	Key  CountKey
	Refs []domicile.SubjectRef
}

// ConsentKind is what a subject consents to.
type ConsentKind string

// Consent kinds the gate needs.
const (
	// ConsentCrossBorder is the separate consent to provision abroad (PIPL Art. 39).
	ConsentCrossBorder ConsentKind = "cross-border"
	// ConsentSensitive is the separate consent to processing sensitive
	// personal information (PIPL Art. 29).
	ConsentSensitive ConsentKind = "sensitive"
)

// ParseConsentKind returns the consent kind named s.
func ParseConsentKind(s string) (ConsentKind, error) {
	switch k := ConsentKind(s); k {
	case ConsentCrossBorder, ConsentSensitive:
		return k, nil
	}
	return "", domicile.FieldErrorf("kind", "must be cross-border or sensitive")
}

// Consent is the current state of one consent of a subject: the version
// of the consent text the app showed, and when it was given or withdrawn.
type Consent struct {
	Subject     domicile.SubjectRef `json:"-"`
	Kind        ConsentKind         `json:"kind"`
	TextVersion string              `json:"text_version"`
	Granted     bool                `json:"granted"`
	Time        time.Time           `json:"time"`
}
