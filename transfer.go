package domicile

import (
	"slices"
	"strings"
	"time"
)

// MechanismKind is the kind of a legal basis for cross-border transfers:
// the kinds a deployment file may declare and the transfer gateway's
// registry may hold. This list is the only one.
type MechanismKind string

// Kinds of mechanism. The first four are China's routes (2024 Provisions
// Arts. 7-8, the Greater Bay Area standard contract); the exemptions are
// those of 2024 Provisions Arts. 4-6 and NDSMR Art. 35(6) that a business
// relies on and documents; the last three are other regimes' instruments
// (GDPR Arts. 45-47).
const (
	MechSecurityAssessment  MechanismKind = "security_assessment"
	MechStandardContract    MechanismKind = "standard_contract"
	MechCertification       MechanismKind = "certification"
	MechGBAStandardContract MechanismKind = "gba_standard_contract"
	MechExemptContract      MechanismKind = "exemption_contract"
	MechExemptHR            MechanismKind = "exemption_hr"
	MechExemptEmergency     MechanismKind = "exemption_emergency"
	MechExemptFTZ           MechanismKind = "exemption_ftz"
	MechExemptTransit       MechanismKind = "exemption_transit"
	MechExemptLegalDuty     MechanismKind = "exemption_legal_duty"
	MechAdequacy            MechanismKind = "adequacy"
	MechSCCs                MechanismKind = "sccs"
	MechBCRs                MechanismKind = "bcrs"
)

var mechanismKinds = []MechanismKind{MechSecurityAssessment, MechStandardContract, MechCertification, MechGBAStandardContract,
	MechExemptContract, MechExemptHR, MechExemptEmergency, MechExemptFTZ, MechExemptTransit, MechExemptLegalDuty,
	MechAdequacy, MechSCCs, MechBCRs}

// MechanismKinds returns every kind of mechanism, China's routes first.
// The slice is a copy.
func MechanismKinds() []MechanismKind { return slices.Clone(mechanismKinds) }

// MechanismKindNames returns the kinds' names joined by ", ", for
// messages.
func MechanismKindNames() string {
	s := make([]string, len(mechanismKinds))
	for i, k := range mechanismKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Valid reports whether k is a kind of mechanism.
func (k MechanismKind) Valid() bool { return slices.Contains(mechanismKinds, k) }

// Exemption reports whether k documents an exemption on its own ground:
// transfers under it are left out of the threshold counts.
func (k MechanismKind) Exemption() bool { return strings.HasPrefix(string(k), "exemption_") }

// KindsFor returns the kinds of registered mechanism that satisfy a
// mechanism the law engine requires (its effects vocabulary: a security
// assessment, the GBA standard contract, a standard contract or
// certification), strongest first; nil for one that needs no registered
// mechanism of these kinds.
func KindsFor(lawMechanism string) []MechanismKind {
	switch lawMechanism {
	case "security_assessment":
		return []MechanismKind{MechSecurityAssessment}
	case "gba_standard_contract":
		return []MechanismKind{MechSecurityAssessment, MechGBAStandardContract}
	case "sc_or_certification":
		return []MechanismKind{MechSecurityAssessment, MechStandardContract, MechCertification}
	}
	return nil
}

// CountClass separates the two counts of people the 2024 Provisions keep
// apart.
type CountClass string

// Classes of personal information counted.
const (
	// ClassPI counts people whose non-sensitive personal information left.
	ClassPI CountClass = "pi"
	// ClassSPI counts people whose sensitive personal information left
	// (PIPL Art. 28).
	ClassSPI CountClass = "spi"
)

// Dimensions of the transfer ledger's counts.
const (
	// DimTotal is the count the thresholds read: every person of a class
	// counted this year (transfers exempt on their own ground left out).
	DimTotal = ""
	// DimMechanism breaks DimTotal down by the mechanism relied on (the
	// registered mechanism's id, else the law's mechanism name).
	DimMechanism = "mechanism"
	// DimDestination breaks DimTotal down by destination.
	DimDestination = "destination"
	// DimRoute counts the people of every transfer, counted toward the
	// thresholds or not, by route: [Route] of its mechanism and
	// destination. The transparency report's people per mechanism and
	// destination are these counts.
	DimRoute = "route"
)

// Route is the value of a DimRoute count: the mechanism (as DimMechanism
// names it) and the destination.
func Route(mechanism string, dest Jurisdiction) string { return mechanism + ">" + string(dest) }

// CountKey names one distinct count of the transfer ledger: the people of
// a class whose data one legal entity sent abroad from one source
// jurisdiction in one calendar year, in total or for one value of a
// dimension.
type CountKey struct {
	Entity string       `json:"entity"`
	Year   int          `json:"year"`
	Source Jurisdiction `json:"source"`
	Class  CountClass   `json:"class"`
	Dim    string       `json:"dim,omitempty"`
	Value  string       `json:"value,omitempty"`
}

// Count is a CountKey and its value.
type Count struct {
	CountKey
	N int64 `json:"n"`
}

// CountAdd asks the ledger to add people to one count: those not yet in
// it raise it by one each.
type CountAdd struct {
	Key  CountKey
	Refs []SubjectRef
}

// Channels by which data left.
const (
	ChannelExport = "export" // an export bundle through the gate
	ChannelRemote = "remote" // a read by an actor acting from abroad
	ChannelImport = "import" // a transfer made before, imported
	// ChannelPortability is a copy moved to another handler at the
	// individual's request (PIPL Art. 45(3), GDPR Art. 20).
	ChannelPortability = "portability"
	// ChannelMigration is a subject's data moved to a cell in another
	// jurisdiction by a migration of the deployment.
	ChannelMigration = "migration"
)

// TransferRecord is one transfer as the ledger keeps it: the evidence a
// filing or an audit needs. It holds no subject id.
type TransferRecord struct {
	ID          string       `json:"id"`
	Time        time.Time    `json:"time"`
	Entity      string       `json:"entity"`
	Year        int          `json:"year"`
	Source      Jurisdiction `json:"source"`
	Destination Jurisdiction `json:"destination"`
	Recipient   string       `json:"recipient"`
	Purpose     string       `json:"purpose"`
	Channel     string       `json:"channel"`
	// Mechanism is the registered mechanism used ("" when none was
	// needed), Kind its kind, and Law the mechanism the law engine
	// required.
	Mechanism string        `json:"mechanism,omitempty"`
	Kind      MechanismKind `json:"mechanism_kind,omitempty"`
	Law       string        `json:"law_mechanism,omitempty"`
	Rules     []string      `json:"rules,omitempty"`
	// Counted is false for transfers exempt on their own ground, which
	// the thresholds leave out.
	Counted bool `json:"counted"`
	// People is how many distinct people (person keys) the transfer
	// carried data of.
	People int64 `json:"people"`
	// NewPI and NewSPI are how many of them the transfer added to the
	// year's total counts of non-sensitive and sensitive personal
	// information ([TransferRecord.SetNew]); 0 for a transfer not counted.
	NewPI      int64      `json:"new_pi"`
	NewSPI     int64      `json:"new_sensitive_pi"`
	Categories []Category `json:"categories"`
	Fields     []string   `json:"fields,omitempty"`
	Token      string     `json:"token,omitempty"`
}

// MechanismName is how the ledger's counts name the mechanism of r (the
// value of its DimMechanism and DimRoute counts): the registered
// mechanism's id, else the law's mechanism name.
func (r *TransferRecord) MechanismName() string {
	if r.Mechanism != "" {
		return r.Mechanism
	}
	return r.Law
}

// SetNew sets NewPI and NewSPI from the adds stored with r and how many
// people each added (the ledger calls it in the transaction that stores
// r, before it writes r): the people new to the year's total of each
// class.
func (r *TransferRecord) SetNew(adds []CountAdd, added []int64) {
	r.NewPI, r.NewSPI = 0, 0
	for i, a := range adds {
		if a.Key.Dim != DimTotal {
			continue
		}
		switch a.Key.Class {
		case ClassPI:
			r.NewPI += added[i]
		case ClassSPI:
			r.NewSPI += added[i]
		}
	}
}

// ConsentKind is what a subject consents to.
type ConsentKind string

// Consent kinds the transfer gate needs.
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
	return "", FieldErrorf("kind", "must be cross-border or sensitive")
}

// Consent is the current state of one consent of a subject: the version
// of the consent text the app showed, and when it was given or withdrawn.
type Consent struct {
	Subject     SubjectRef  `json:"-"`
	Kind        ConsentKind `json:"kind"`
	TextVersion string      `json:"text_version"`
	Granted     bool        `json:"granted"`
	Time        time.Time   `json:"time"`
}
