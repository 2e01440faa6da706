/**
 * The snapshot file (docs/snapshot-format.md): {@link org.nxia.snapshot.api.SnapshotWriter}
 * writes one file of named sections and sparse guest RAM, optionally encrypted at rest
 * (AES-256-GCM); {@link org.nxia.snapshot.api.SnapshotReader} validates all of a file before
 * it hands anything out and refuses what it cannot validate with a
 * {@link org.nxia.snapshot.api.SnapshotFormatException}.
 *
 * <p>What a section holds (vCPU registers, device states) is the VMM's business, not this
 * package's: here a section is a name and bytes.
 *
 * <p>1.1: {@code SnapshotWriter.ram(long, List<RamPiece>, SaveProgress)} takes RAM in pieces
 * where they are held, without a copy laid out whole.
 */
@Export
@Version("1.1.0")
package org.nxia.snapshot.api;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
