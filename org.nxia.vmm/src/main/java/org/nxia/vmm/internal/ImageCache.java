package org.nxia.vmm.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.image.GuestImageException;

/**
 * Checked guest images by file identity (path, size, modification time): a
 * sandbox that starts the same image many times reads and checks it once.
 * A changed file is read again.
 */
final class ImageCache {

    private static final int CAPACITY = 32;

    private record Key(Path path, long size, long modified) {
    }

    private final Map<Key, ElfImage> images = new ConcurrentHashMap<>();

    ElfImage load(Path image) {
        Path path = image.toAbsolutePath().normalize();
        BasicFileAttributes attributes;
        try {
            attributes = Files.readAttributes(path, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            throw new GuestImageException(image + ": no such file; build the guests with ./nxia build or give a path to an .elf");
        } catch (IOException e) {
            throw new GuestImageException(image + ": cannot read it (" + e.getMessage() + ")");
        }
        if (!attributes.isRegularFile()) {
            throw new GuestImageException(image + ": not a regular file");
        }
        if (attributes.size() > ElfImage.MAX_FILE_SIZE) {
            throw new GuestImageException(image + ": " + attributes.size() + " bytes is larger than the 256 MiB a guest image may be");
        }
        Key key = new Key(path, attributes.size(), attributes.lastModifiedTime().toMillis());
        ElfImage cached = images.get(key);
        if (cached != null) {
            return cached;
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(path);
        } catch (IOException e) {
            throw new GuestImageException(image + ": cannot read it (" + e.getMessage() + ")");
        }
        ElfImage parsed = ElfImage.parse(bytes, image.toString());
        if (images.size() >= CAPACITY) {
            images.clear();
        }
        images.put(key, parsed);
        return parsed;
    }
}
