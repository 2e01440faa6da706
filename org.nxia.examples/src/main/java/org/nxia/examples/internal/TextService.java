package org.nxia.examples.internal;

import java.lang.foreign.MemorySegment;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

import org.osgi.service.component.annotations.Component;

/**
 * The {@code text} Gemini host service: shows that any bundle's service with a
 * {@code gemini.service} property is callable by name from guests and Linux processes, as the
 * profile's manifest allows (the shipped manifest of profile {@code system} allows {@code text.*}).
 */
@Component(property = "gemini.service=text")   // Gemini.SERVICE_PROPERTY, by value: this bundle needs no Gemini to load
public final class TextService implements Text {

    /** Bytes a digest reads at a time: a referenced argument may be a whole region. */
    private static final long CHUNK = 1 << 20;

    @Override
    public String upper(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            b.append(c >= 'a' && c <= 'z' ? (char) (c - 32) : c);
        }
        return b.toString();
    }

    @Override
    public String sha256(MemorySegment data) {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);   // every Java SE has it
        }
        for (long at = 0; at < data.byteSize(); at += CHUNK) {
            digest.update(data.asSlice(at, Math.min(CHUNK, data.byteSize() - at)).asByteBuffer());
        }
        return HexFormat.of().formatHex(digest.digest());
    }
}
