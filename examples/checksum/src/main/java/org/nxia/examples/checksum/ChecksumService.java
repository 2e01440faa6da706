package org.nxia.examples.checksum;

import java.lang.foreign.MemorySegment;
import java.util.zip.Adler32;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;
import java.util.zip.Checksum;

import org.nxia.gemini.api.Gemini;
import org.osgi.service.component.annotations.Component;

/**
 * A runtime adapter: the JDK's {@code java.util.zip} checksums as the Gemini service
 * {@code checksum}, so a guest calls {@code checksum.crc32(bytes)} instead of carrying its own
 * table. Registered under its own class, so its public methods are what guests may call. A
 * byte argument arrives copied or, when large, in place in the session's reference region;
 * either way as a read-only segment the methods read once.
 */
@Component(service = ChecksumService.class, property = Gemini.SERVICE_PROPERTY + "=" + ChecksumService.NAME)
public final class ChecksumService {

    static final String NAME = "checksum";

    public long crc32(MemorySegment data) {
        return of(new CRC32(), data);
    }

    public long crc32c(MemorySegment data) {
        return of(new CRC32C(), data);
    }

    public long adler32(MemorySegment data) {
        return of(new Adler32(), data);
    }

    private static long of(Checksum checksum, MemorySegment data) {
        checksum.update(data.asByteBuffer());
        return checksum.getValue();
    }
}
