package org.nxia.examples.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.nxia.vmm.api.HostFunction;
import org.osgi.service.component.annotations.Component;

/**
 * {@code upper}: returns the argument's ASCII letters upper-cased. The
 * {@code hostcall} example guest calls it; it shows that any bundle's
 * {@link HostFunction} service is callable from a guest by name.
 */
@Component(property = HostFunction.NAME_PROPERTY + "=upper")
public final class UpperCaseFunction implements HostFunction {

    @Override
    public long call(MemorySegment argument, MemorySegment result) {
        long n = Math.min(argument.byteSize(), result.byteSize());
        for (long i = 0; i < n; i++) {
            byte c = argument.get(ValueLayout.JAVA_BYTE, i);
            result.set(ValueLayout.JAVA_BYTE, i, c >= 'a' && c <= 'z' ? (byte) (c - 32) : c);
        }
        return n;
    }
}
