import type { DescribeImagesCommandInput, EC2Client, Image, RegisterImageCommandInput } from '@aws-sdk/client-ec2';
import { ec2Sdk } from './sdk.js';
import { ToolError } from '../errors.js';

const { DeregisterImageCommand, DescribeImagesCommand, RegisterImageCommand } = ec2Sdk;

/** DescribeImages over every page. */
export async function describeAllImages(client: EC2Client, input: DescribeImagesCommandInput): Promise<Image[]> {
  const found: Image[] = [];
  let token: string | undefined;
  do {
    const out = await client.send(new DescribeImagesCommand({ ...input, ...(token ? { NextToken: token } : {}) }));
    found.push(...(out.Images ?? []));
    token = out.NextToken || undefined;
  } while (token);
  return found;
}

/** The caller's own images whose image location is exactly `location` (bucket/key of a manifest). */
export async function ownImagesAt(client: EC2Client, location: string): Promise<Image[]> {
  const images = await describeAllImages(client, { Owners: ['self'], Filters: [{ Name: 'manifest-location', Values: [location] }] });
  // The filter is EC2's; the comparison is ours too, so a looser match elsewhere never deregisters a stranger's image.
  return images.filter((i) => i.ImageId && i.ImageLocation === location);
}

/** RegisterImage; the new image's id. */
export async function sendRegisterImage(client: EC2Client, input: RegisterImageCommandInput): Promise<string> {
  const out = await client.send(new RegisterImageCommand(input));
  if (!out.ImageId) throw new ToolError('RegisterImage answered without an image id', { code: 'EC2_ERROR' });
  return out.ImageId;
}

export async function sendDeregisterImage(client: EC2Client, imageId: string): Promise<void> {
  await client.send(new DeregisterImageCommand({ ImageId: imageId }));
}
