"""The public API of the operator: the AuroraRestore spec and status models, and the CRD made from them."""

GROUP = "dbrestore.io"
VERSION = "v1alpha1"
KIND = "AuroraRestore"
PLURAL = "aurorarestores"
SINGULAR = "aurorarestore"
SHORT_NAMES = ["ar"]
