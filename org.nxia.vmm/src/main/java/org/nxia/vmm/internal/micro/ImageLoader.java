package org.nxia.vmm.internal.micro;

import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.image.GuestImageException;

/** Copies an image's segments into guest RAM after checking each against the layout. */
public final class ImageLoader {

    private ImageLoader() {
    }

    public static void load(ElfImage image, GuestMemory memory, MicroVmLayout layout, String name) {
        for (ElfImage.LoadSegment s : image.segments()) {
            if (s.end() > layout.imageLimit()) {
                throw new GuestImageException("%s: segment [0x%x, 0x%x) does not fit below the stack at 0x%x in %d KiB of RAM: give the VM more memory"
                        .formatted(name, s.address(), s.end(), layout.imageLimit(), layout.ramSize() / 1024));
            }
        }
        for (ElfImage.LoadSegment s : image.segments()) {
            var target = memory.slice(s.address(), s.memorySize());
            target.fill((byte) 0);
            java.lang.foreign.MemorySegment.copy(image.bytes(), (int) s.fileOffset(), target,
                    java.lang.foreign.ValueLayout.JAVA_BYTE, 0, (int) s.fileSize());
        }
    }
}
