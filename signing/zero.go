package signing

import (
	"crypto/rsa"
	"math/big"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/ecdh"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// zeroEntity overwrites the secret numbers of every private key in ent.
// It reaches what go-crypto exposes (big.Int words, seed bytes); copies that
// crypto/rsa precomputes into unexported fields are only dropped, not
// overwritten — docs/signing.md says so.
func zeroEntity(ent *openpgp.Entity) {
	zeroPrivate(ent.PrivateKey)
	for i := range ent.Subkeys {
		zeroPrivate(ent.Subkeys[i].PrivateKey)
	}
}

func zeroPrivate(pk *packet.PrivateKey) {
	if pk == nil {
		return
	}
	switch k := pk.PrivateKey.(type) {
	case *rsa.PrivateKey:
		zeroInt(k.D)
		for _, p := range k.Primes {
			zeroInt(p)
		}
		zeroInt(k.Precomputed.Dp)
		zeroInt(k.Precomputed.Dq)
		zeroInt(k.Precomputed.Qinv)
	case *eddsa.PrivateKey:
		clear(k.D)
	case *ecdh.PrivateKey:
		clear(k.D)
	}
	pk.PrivateKey = nil
}

func zeroInt(x *big.Int) {
	if x == nil {
		return
	}
	clear(x.Bits())
	x.SetInt64(0)
}
