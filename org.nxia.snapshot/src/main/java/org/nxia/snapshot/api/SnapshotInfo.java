package org.nxia.snapshot.api;

import java.util.List;

/**
 * A validated snapshot's header and section table, for {@code snapshot info} and {@code verify}.
 *
 * @param majorVersion the format's major version (a reader reads only its own major)
 * @param minorVersion the format's minor version
 * @param encrypted whether the sections are encrypted
 * @param authenticated whether the file was checked with its key (false for an encrypted
 *        file opened without one: then its structure and hashes were checked, not its origin)
 * @param requirements what a host must offer to restore it
 * @param fileLength the file's length in bytes
 * @param sections every section, in file order (the RAM's two included)
 * @param ramSize guest RAM's size in bytes, 0 without RAM (or when encrypted and opened without its key)
 * @param ramStoredBytes the bytes of guest pages stored
 */
public record SnapshotInfo(int majorVersion, int minorVersion, boolean encrypted, boolean authenticated,
    Requirements requirements, long fileLength, List<SectionInfo> sections, long ramSize, long ramStoredBytes) {

    public SnapshotInfo {
        sections = List.copyOf(sections);
    }
}
