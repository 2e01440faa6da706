package org.nxia.shell.internal;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

import org.apache.felix.service.command.Descriptor;
import org.nxia.shell.support.Text;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.InvalidSyntaxException;
import org.osgi.framework.ServiceReference;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;

/** {@code device:list}: the device types VMs can ask for now, and the bundles that provide them. */
@Component(service = DeviceCommands.class, property = {"osgi.command.scope=device", "osgi.command.function=list"})
public final class DeviceCommands {

    private final BundleContext context;

    @Activate
    public DeviceCommands(BundleContext context) {
        this.context = context;
    }

    @Descriptor("list the device types a VM profile can name (vm:run --devices 'uart;debug-exit'), with their bundles")
    public String list() throws InvalidSyntaxException {
        List<List<String>> rows = new ArrayList<>();
        var refs = context.getServiceReferences(DeviceFactory.class, null);
        List<ServiceReference<DeviceFactory>> sorted = new ArrayList<>(refs);
        sorted.sort(Comparator.comparing(r -> String.valueOf(r.getProperty(DeviceFactory.TYPE_PROPERTY))));
        for (ServiceReference<DeviceFactory> ref : sorted) {
            DeviceFactory factory = context.getService(ref);
            if (factory == null) {
                continue;
            }
            try {
                Bundle b = ref.getBundle();
                rows.add(List.of(String.valueOf(ref.getProperty(DeviceFactory.TYPE_PROPERTY)), factory.description(),
                        b.getSymbolicName() + " " + b.getVersion()));
            } finally {
                context.ungetService(ref);
            }
        }
        if (rows.isEmpty()) {
            return "no device types installed (install a device bundle, e.g. org.nxia.device.platform)";
        }
        return Text.table(List.of("type", "what", "bundle"), rows);
    }
}
